# `make demo` sets everything up and stylises the bundled example; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: demo test bench models clean

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

# The bundled networks (issue 10): trained by painterly itself on ../shared/data/photos (the
# held-out photos for their model cards are ../shared/data/adain/content). Checkpointed: Ctrl-C and
# `make models RESUME=--resume` continue exactly. About two hours each on 2 CPU cores.
SHARED ?= ../shared/data
TRAIN = nice $(BIN)/painterly train --photos $(SHARED)/photos --seed 0 --widths 16,32,64 --steps 2000 $(RESUME)
models: $(BIN)/.installed
	mkdir -p painterly/models
	$(TRAIN) painterly/examples/starry_night.jpg -o painterly/models/starry_night.safetensors \
		--validation $(SHARED)/adain/content/golden_gate.jpg
	$(TRAIN) --multi-style $(SHARED)/classic/style/starry_night.jpg $(SHARED)/classic/style/the_scream.jpg \
		$(SHARED)/classic/style/shipwreck.jpg $(SHARED)/classic/style/composition_vii.jpg \
		-o painterly/models/four_paintings.safetensors --validation $(SHARED)/adain/content/golden_gate.jpg

clean:
	rm -rf $(VENV) $(OUT) *.egg-info
