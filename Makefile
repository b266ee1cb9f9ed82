# `make demo` sets everything up and stylises the bundled example; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	mkdir -p $(OUT)
	$(BIN)/painterly painterly/examples/tubingen.jpg painterly/examples/starry_night.jpg \
		-o $(OUT)/tubingen_starry_night.png --size 384 --iterations 100 --coarse-iterations 150 \
		--seed 0 --comparison --log
	@echo "wrote $(OUT)/tubingen_starry_night.png, .compare.png (content | style | result), .json and .loss.png"

test: $(BIN)/.installed
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/pastiche_speed.py --size 512 --iterations 30
	$(BIN)/python benchmarks/time_to_quality.py --size 512 --iterations 100

clean:
	rm -rf $(VENV) $(OUT) *.egg-info
