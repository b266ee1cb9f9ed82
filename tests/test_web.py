"""The web app's HTTP API: uploads and their validation, the job lifecycle, cancel, the queue, restart
persistence, the event stream, and the Host/token/origin checks (FastAPI's test client, tiny jobs)."""

from __future__ import annotations

import dataclasses
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import painterly  # noqa: E402
from painterly.figures import PALETTE  # noqa: E402
from painterly.web import jobs as web_jobs  # noqa: E402
from painterly.web.server import MAX_STYLES, ServerSettings, create_app  # noqa: E402
from painterly.web.terms import in_api_terms  # noqa: E402

TINY = {"size": 48, "iterations": 3, "scales": 1, "seed": 0}
LONG = {"size": 48, "iterations": 400, "scales": 1, "seed": 0, "precision": "fp32"}


def png(color=(200, 40, 40), size=(64, 48), mode="RGB") -> bytes:
    image = Image.new(mode, size, color)
    for x in range(0, size[0], 8):  # some structure, so the style has texture
        for y in range(size[1]):
            image.putpixel((x, y), (30, 30, 200) if mode == "RGB" else 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def files(content=None, styles=None, **extra):
    parts = [("content", ("photo.png", content if content is not None else png(), "image/png"))]
    for i, style in enumerate(styles if styles is not None else [png((20, 120, 220))]):
        parts.append(("style", (f"style{i}.png", style, "image/png")))
    for name, value in extra.items():
        parts.append((name, value))
    return parts


def submit(client, options=None, **kwargs):
    return client.post("/api/jobs", files=files(**kwargs), data={"options": json.dumps(options or TINY)})


def wait(client, job_id, states=("done", "failed", "cancelled"), timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {status['state']} after {timeout} s")


@pytest.fixture
def settings(tmp_path):
    return ServerSettings(tmp_path / "data", token="secret-token")


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as c:
        yield c


def test_a_job_runs_to_a_result_with_its_status_and_command(client):
    answer = submit(client)
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    status = wait(client, job_id)
    assert status["state"] == "done", status
    assert status["method"] == "gatys" and status["size"] == [48, 36]
    assert status["progress"]["iteration"] == 3 and set(status["progress"]["losses"]) >= {"content", "style", "total"}
    result = client.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(result.content)).size == (48, 36)
    download = client.get(f"/api/jobs/{job_id}/result?download=true")
    assert "attachment" in download.headers["content-disposition"]
    command = client.get(f"/api/jobs/{job_id}/command").json()["command"]
    assert command.startswith("painterly photo.png style0.png --method gatys ") and "--size 48" in command
    assert "--iterations 3" in command and command.endswith(f"-o painterly_{job_id}.png")
    listed = client.get("/api/jobs").json()
    assert [j["id"] for j in listed] == [job_id]
    assert status["estimated_seconds"] > 0  # the plan's, which the page shows
    # the loss curve, as the CLI's --log draws it: one curve a term, falling
    curve = client.get(f"/api/jobs/{job_id}/loss")
    assert curve.status_code == 200 and curve.headers["content-type"] == "image/png"
    drawn = np.asarray(Image.open(io.BytesIO(curve.content)).convert("RGB")).astype(int)
    assert (np.abs(drawn - np.array(PALETTE[0])).sum(-1) < 30).sum() > 50  # the first term's colour is drawn
    network = submit(client, {"method": "network", "model": "starry_night", "size": 48}, styles=[])
    assert wait(client, network.json()["id"])["state"] == "done"
    missing = client.get(f"/api/jobs/{network.json()['id']}/loss")
    assert missing.status_code == 404 and "one forward pass" in missing.json()["error"]


def test_the_command_line_the_api_gives_parses_back_to_the_same_config(client):
    options = {"method": "gatys", "size": 48, "iterations": 3, "style_layers": ["relu1_1", "relu2_1"],
               "preserve_color": "luminance", "style_weight": 2.5, "seed": 3}
    job_id = submit(client, options).json()["id"]
    command = client.get(f"/api/jobs/{job_id}/command").json()["command"].split()
    from painterly.cli import build_parser

    args = build_parser().parse_intermixed_args(command[1:])
    assert args.style_layers == ("relu1_1", "relu2_1") and args.preserve_color == "luminance"
    assert args.style_weight == 2.5 and args.size == 48 and args.seed == 3
    client.delete(f"/api/jobs/{job_id}")


def test_a_job_without_a_seed_gets_one_so_its_command_paints_the_same_picture(client):
    """The run drew a seed nobody saw: the copied command (no --seed) painted another picture."""
    for given in ({}, {"seed": -1}):
        options = {k: v for k, v in TINY.items() if k != "seed"} | given
        status = client.get(f"/api/jobs/{submit(client, options).json()['id']}").json()
        seed = status["options"]["seed"]
        assert isinstance(seed, int) and seed >= 0
        assert f"--seed {seed}" in client.get(f"/api/jobs/{status['id']}/command").json()["command"]
        client.delete(f"/api/jobs/{status['id']}")
    network = submit(client, {"method": "network", "model": "starry_night", "size": 48}, styles=[]).json()["id"]
    assert "seed" not in client.get(f"/api/jobs/{network}").json()["options"]  # draws nothing


def test_methods_lists_every_registered_method_with_its_options_and_defaults(client):
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert set(methods) == set(painterly.available_methods())
    gatys = {o["name"]: o for o in methods["gatys"]["options"]}
    assert gatys["size"]["default"] == 512 and gatys["size"]["type"] == "integer"
    assert (gatys["size"]["minimum"], gatys["size"]["maximum"]) == (16, 65536)  # the form's bounds, both ends
    assert gatys["preserve_color"]["choices"] == ["none", "luminance", "histogram"]
    assert gatys["init"]["files"] and gatys["init"]["names"] == ["content", "noise", "style", "model:four_paintings",
                                                                 "model:starry_night"]
    assert "guidance" in methods["gatys"]["accepts"]
    network = methods[painterly.method_for(["model"])]
    model = {o["name"]: o for o in network["options"]}["model"]
    assert network["needs_styles"] is False and "starry_night" in model["names"] and model["files"]


@pytest.mark.parametrize("case, status, words", [
    ("non_image", 415, "not an image"),
    ("corrupt", 400, "corrupt"),
    ("too_many_styles", 400, "too many 'style' files"),
    ("unknown_option", 400, "unknown option"),
    ("wrong_type", 400, "size must be a whole number"),
    ("bad_json", 400, "not valid JSON"),
    ("nan", 400, "NaN is not a number"),
    ("unknown_method", 400, "unknown method"),
    ("path_option", 400, "may name a file"),
    ("path_model", 400, "may name a file"),
    ("path_init_model", 400, "may name a file"),
    ("no_style", 400, "at least one style image is needed"),
    ("network_style", 400, "takes no style images"),
    ("unexpected_field", 400, "unexpected file field"),
    ("guidance_count", 400, "style guidance map(s) for"),
    ("no_model", 400, "no model given"),
    ("style_weights", 400, "style weights have 2 values for a model of 4 style(s)"),
    ("huge", 400, "GiB"),
    ("device", 400, "cuda"),
    # sizes of work no check capped: a size of 1e30 had the planner allocate until the kernel killed the server,
    # scales 1e6 spun for minutes; a blank method ran the default's 200 iterations; `config` met make_config's own
    ("absurd_size", 400, "size must be at most 65536"),
    ("absurd_scales", 400, "scales must be at most 13"),
    ("blank_method", 400, "method is empty"),
    ("config_option", 400, "unknown option config"),
    # an HTTP client's walkthrough: each was accepted, then failed the job (or the server, a 500)
    ("huge_max_memory", 400, "max_memory must be at most 1048576"),
    ("huge_learning_rate", 400, "learning_rate must be at most"),
    ("huge_iterations", 400, "iterations must be at most 100000"),
    ("style_too_small", 400, "shrinks a style image"),
    ("key_twice", 400, "size given twice"),
    ("hyphenated_option", 400, "unknown option 'style-scale' (did you mean style_scale?)"),
])
def test_bad_uploads_are_refused_with_a_json_error_and_leave_nothing_behind(client, settings, case, status, words):
    options = dict(TINY)
    kwargs = {}
    if case == "non_image":
        kwargs["styles"] = [b"#!/bin/sh\necho this is not an image\n"]
    elif case == "corrupt":
        kwargs["content"] = png()[:60]
    elif case == "too_many_styles":
        kwargs["styles"] = [png()] * (MAX_STYLES + 1)
    elif case == "unknown_option":
        options["colour"] = "red"
    elif case == "wrong_type":
        options["size"] = "512"
    elif case == "unknown_method":
        options["method"] = "pix2pix"
    elif case == "path_option":
        options["init"] = "/etc/passwd"
    elif case == "path_model":
        options = {"method": painterly.method_for(["model"]), "model": "../../secret.safetensors"}
    elif case == "path_init_model":
        options["init"] = "model:../../secret.safetensors"
    elif case == "network_style":
        options = {"method": painterly.method_for(["model"]), "model": "starry_night"}
    elif case == "no_style":
        kwargs["styles"] = []
    elif case in ("no_model", "style_weights"):  # what the run would refuse, refused on submission
        options = {"method": painterly.method_for(["model"])}
        options.update({} if case == "no_model" else {"model": "four_paintings", "style_weights": [1, 2]})
        kwargs["styles"] = []
    elif case == "huge":
        options.update(size=60000, tile_size=0)
    elif case == "absurd_size":
        options.update(size=10**30)
    elif case == "absurd_scales":
        options.update(scales=10**6)
    elif case == "blank_method":
        options["method"] = " "
    elif case == "config_option":
        options["config"] = {}
    elif case == "huge_max_memory":
        options["max_memory"] = 1e308
    elif case == "huge_learning_rate":
        options["learning_rate"] = 1e308
    elif case == "huge_iterations":
        options["iterations"] = 2**64
    elif case == "style_too_small":
        options.update(style_scale=0.2)
    elif case == "hyphenated_option":
        options["style-scale"] = 2
    elif case == "device":
        options["device"] = "cuda"
    elif case == "unexpected_field":
        kwargs["evil"] = ("x.png", png(), "image/png")
    elif case == "guidance_count":
        kwargs["content_guidance"] = ("c.png", png(), "image/png")
        kwargs["style_guidance"] = ("g.png", png(), "image/png")
        kwargs["styles"] = [png(), png()]
    body = {"bad_json": "{not json", "nan": '{"style_weight": NaN}',
            "key_twice": '{"size": 48, "size": 99999999}'}.get(case, json.dumps(options))
    answer = client.post("/api/jobs", files=files(**kwargs), data={"options": body})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert client.get("/api/jobs").json() == []
    assert list((settings.data / "jobs").iterdir()) == []  # the refused upload's folder is gone


def test_jobs_that_ended_can_be_removed_with_their_files(client, settings):
    """The gallery only grew: a finished job can be deleted (?remove=true); a plain DELETE stays a cancel,
    so a cancel that arrives just after the job finished never deletes its result."""
    job_id = submit(client).json()["id"]
    assert wait(client, job_id)["state"] == "done"
    assert client.delete(f"/api/jobs/{job_id}").status_code == 409  # a cancel: too late, nothing removed
    assert (settings.data / "jobs" / job_id / "result.png").exists()
    removed = client.delete(f"/api/jobs/{job_id}?remove=true")
    assert removed.status_code == 200 and removed.json() == {"id": job_id, "removed": True}
    assert not (settings.data / "jobs" / job_id).exists()
    assert client.get(f"/api/jobs/{job_id}").status_code == 404 and client.get("/api/jobs").json() == []
    assert client.delete(f"/api/jobs/{job_id}?remove=true").status_code == 404


def test_an_unfinished_job_is_not_removed(settings):
    store = web_jobs.JobStore(settings.data)
    job_id, _ = store.new_folder()
    job = web_jobs.Job(job_id, "gatys", {}, {"content": "c.png", "styles": ["s.png"]}, time.time())
    store.add(job)
    assert not store.remove(job) and (settings.data / "jobs" / job.id / "job.json").exists()
    store.cancel(job)  # queued: cancelled at once
    assert store.remove(job) and not (settings.data / "jobs" / job.id).exists()


def test_what_an_http_client_reads_of_the_api(client):
    """HEAD answers as GET does; /api/methods offers only the inputs a request can carry and the bounds the
    checks use; the schema says which bodies are images and that errors are {"error": ...} with 400, not 422;
    whitespace for options is no options; a Host that only begins like this server's is refused."""
    assert client.head("/api/methods").status_code == 200
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert methods["strotss"]["accepts"] == ["guidance"] and methods["gatys"]["accepts"] == ["guidance"]
    helps = [o["help"] for m in methods.values() for o in m["options"]]
    assert not [h for h in helps if "--" in h or "comma" in h or "painterly " in h or "'max'" in h or "file" in h]
    gatys = {o["name"]: o for o in methods["gatys"]["options"]}
    assert "e.g. [200, 100, 20, 4]" in gatys["scale_iterations"]["help"]  # a list is a JSON list here
    adain = {o["name"]: o for o in methods["adain"]["options"]}
    assert adain["strength"]["maximum"] == 1 and adain["color_match"]["maximum"] == 1
    schema = client.get("/api/openapi.json").json()
    result = schema["paths"]["/api/jobs/{job_id}/result"]["get"]["responses"]
    assert list(result["200"]["content"]) == ["image/png"] and "422" not in result and "404" in result
    assert "text/event-stream" in schema["paths"]["/api/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert "HTTPValidationError" not in json.dumps(schema)
    blank = client.post("/api/jobs", files=files(styles=[]), data={"options": "  \n"})
    assert blank.status_code == 400 and "at least one style" in blank.json()["error"]  # read as {}, not bad JSON
    evil = client.get("/api/methods", headers={"host": "127.0.0.1:7860.evil.com"})
    assert evil.status_code == 400 and "Host" in evil.json()["error"]


NETWORK = painterly.method_for(["model"])
WIDE = (96, 24)  # another aspect ratio than png()'s 64x48
ASPECT = "a guidance map must have its image's aspect ratio"


@pytest.mark.parametrize("case, words", [
    ("content_guidance_alone", "guidance needs both a content guidance map and style guidance maps"),
    ("style_guidance_alone", "guidance needs both a content guidance map and style guidance maps"),
    ("content_guidance_aspect", "the content guidance map is 96x24 but the content is 64x48; " + ASPECT),
    ("style_guidance_aspect", "style guidance map 2 is 96x24 but style image 2 is 64x48; " + ASPECT),
    ("threads", "threads 1000 is more than the "),
    ("style_weights_zero", "style weights must be non-negative and not all zero"),
    ("seed", "seed must be at most 18446744073709551615"),
    ("blend_count", "style_blend_weights has 3 values for 2 style images"),
    ("blend_zero", "style_blend_weights must not all be zero"),
    ("histogram_network", "preserve_color histogram recolours the style images"),
])
def test_what_a_run_would_refuse_is_400_before_queueing_with_the_librarys_message(client, settings, tmp_path,
                                                                                  case, words):
    """Each was accepted (201) and failed only when run: now refused on submission, with the one line the
    library gives (in the API's terms), and nothing queued or left on disk."""
    options, styles, guides = dict(TINY), [png(), png((20, 120, 220))], {}
    if case == "content_guidance_alone":
        guides["content_guidance"] = png()
    elif case == "style_guidance_alone":
        guides["style_guidance"] = [png(), png()]
    elif case == "content_guidance_aspect":
        guides = {"content_guidance": png(size=WIDE), "style_guidance": [png(), png()]}
    elif case == "style_guidance_aspect":
        guides = {"content_guidance": png(), "style_guidance": [png(), png(size=WIDE)]}
    elif case == "threads":
        options["threads"] = 1000
    elif case == "style_weights_zero":
        options, styles = {"method": NETWORK, "model": "four_paintings", "size": 48, "style_weights": [0, 0, 0, 0]}, []
    elif case == "seed":
        options["seed"] = 99999999999999999999
    elif case in ("blend_count", "blend_zero"):
        options["style_blend_weights"] = [1, 2, 3] if case == "blend_count" else [0, 0]
    elif case == "histogram_network":
        options, styles = {"method": NETWORK, "model": "starry_night", "size": 48, "preserve_color": "histogram"}, []
    parts = files(styles=styles)
    if "content_guidance" in guides:
        parts.append(("content_guidance", ("c.png", guides["content_guidance"], "image/png")))
    parts += [("style_guidance", (f"s{i}.png", g, "image/png")) for i, g in enumerate(guides.get("style_guidance", []))]
    answer = client.post("/api/jobs", files=parts, data={"options": json.dumps(options)})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error.startswith(words) and "\n" not in error and "--" not in error, error
    assert client.get("/api/jobs").json() == []
    assert list((settings.data / "jobs").iterdir()) == []
    # the library refuses the same inputs with the same line (before any work: each fails as the run starts)
    paths = {}
    for name, data in [("content", png()), *((f"style{i}", s) for i, s in enumerate(styles)),
                       *(("content_guidance", g) for g in [guides.get("content_guidance")] if g),
                       *((f"style_guidance{i}", g) for i, g in enumerate(guides.get("style_guidance", [])))]:
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(data)
    keywords = {k: str(paths[k]) for k in ("content_guidance",) if k in paths}
    if guides.get("style_guidance"):
        keywords["style_guidance"] = [str(paths[f"style_guidance{i}"]) for i in range(len(guides["style_guidance"]))]
    method = options.pop("method", None)
    with pytest.raises(painterly.PainterlyError) as refused:
        painterly.stylize(str(paths["content"]), [str(paths[f"style{i}"]) for i in range(len(styles))],
                          method=method, **keywords, **options)
    assert in_api_terms(str(refused.value)) == error


def test_style_masks_are_not_taken_over_http(client):
    """The API has no style masks (guidance maps do that job): a mask file or option is refused up front."""
    answer = client.post("/api/jobs", files=files(style_masks=("m.png", png(), "image/png")),
                         data={"options": json.dumps(TINY)})
    assert answer.status_code == 400 and "unexpected file field 'style_masks'" in answer.json()["error"]
    answer = submit(client, {**TINY, "style_masks": ["m.png"]})
    assert answer.status_code == 400 and "unknown option" in answer.json()["error"]
    assert client.get("/api/jobs").json() == []


def test_options_given_twice_are_refused_not_resolved_last_one_wins(client, settings):
    parts = files() + [("options", (None, json.dumps({**TINY, "size": 64}))), ("options", (None, json.dumps(TINY)))]
    answer = client.post("/api/jobs", files=parts)
    assert answer.status_code == 400 and answer.json()["error"] == "field 'options' is given twice; send it once"
    assert client.get("/api/jobs").json() == []
    assert list((settings.data / "jobs").iterdir()) == []


def test_messages_name_the_apis_options_not_command_line_flags_or_files(client):
    huge = submit(client, {**TINY, "size": 60000, "max_memory": 4}).json()["error"]
    assert "--" not in huge and "the largest size that fits is about size " in huge, huge
    no_model = submit(client, {"method": NETWORK}, styles=[]).json()["error"]
    assert no_model == "no model given; name a bundled one (GET /api/methods lists them)"
    colour = submit(client, {**TINY, "preserve_color": "--bogus"}).json()["error"]
    assert colour.startswith("preserve_color must be ") and colour.endswith("got '--bogus'")  # a value stays as given
    decoders = submit(client, {"method": painterly.method_for(["decoders"]), "decoders": ["x"]}).json()["error"]
    assert "--" not in decoders and "decoders" in decoders


def test_in_api_terms_spells_flags_and_option_names_as_json_keys():
    assert in_api_terms("use --size 512 or --max-memory 2") == "use size 512 or max_memory 2"
    assert in_api_terms("preserve-color histogram, style-blend-weights and non-negative") == \
        "preserve_color histogram, style_blend_weights and non-negative"
    assert in_api_terms("input 'a--b-c.png' is its image's; --tile-size\n 64") == \
        "input 'a--b-c.png' is its image's; tile_size 64"
    assert in_api_terms("max-memory must be a number or None, got str 'lots'") == \
        "max_memory must be a number or null, got str 'lots'"  # JSON's word for it


def test_result_and_preview_of_an_unknown_job_are_no_such_job(client):
    for path in ("result", "preview", "command", "events", ""):
        answer = client.get(f"/api/jobs/0123456789abcdef/{path}".rstrip("/"))
        assert answer.status_code == 404 and answer.json() == {"error": "no such job"}, (path, answer.text)
    job_id = submit(client, LONG).json()["id"]
    client.delete(f"/api/jobs/{job_id}")
    wait(client, job_id)
    answer = client.get(f"/api/jobs/{job_id}/result")
    assert answer.status_code == 404 and answer.json() == {"error": "no result: the job is cancelled"}


def test_every_error_has_the_apis_shape(settings, monkeypatch):
    """FastAPI's own errors (no such route, a method not taken, a malformed parameter, a bug) answer
    {"error": "one line"} like the API's, with their status kept."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as client:
        for answer, status in ((client.get("/api/nothing"), 404), (client.get("/api/jobs/a/b/c"), 404),
                               (client.put("/api/jobs"), 405), (client.patch("/api/methods"), 405),
                               (client.get("/api/jobs/0123456789abcdef/result?download=maybe"), 400)):
            assert answer.status_code == status and list(answer.json()) == ["error"], answer.text
            assert answer.json()["error"] and "\n" not in answer.json()["error"]
        assert client.get("/api/nothing").json() == {"error": "not found"}
        assert client.put("/api/jobs").headers["allow"] == "GET, HEAD, POST"  # 405 still says what the path takes
        # every method the path answers, not only its first route's (it said GET where DELETE works too)
        assert client.post("/api/jobs/0123456789abcdef").headers["allow"] == "DELETE, GET, HEAD"
        assert client.get("/api/jobs/0123456789abcdef/result?download=maybe").json()["error"].startswith(
            "query download: ")

        def broken(method):
            raise RuntimeError("a bug")

        monkeypatch.setattr(painterly, "method_options", broken)
        answer = client.get("/api/methods")
        assert answer.status_code == 500 and answer.json() == {"error": "unexpected RuntimeError in painterly's server"}


def test_a_file_over_the_limit_is_cut_off_with_413(tmp_path):
    settings = ServerSettings(tmp_path / "data", max_upload_bytes=20_000)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        big = Image.effect_noise((200, 200), 80).convert("RGB")
        buffer = io.BytesIO()
        big.save(buffer, format="PNG")
        assert len(buffer.getvalue()) > 20_000
        answer = client.post("/api/jobs", files=files(content=buffer.getvalue()), data={"options": json.dumps(TINY)})
        assert answer.status_code == 413 and "upload limit" in answer.json()["error"]
        assert list((settings.data / "jobs").iterdir()) == []


def test_a_decompression_bomb_is_refused_with_413(client, tmp_path):
    buffer = io.BytesIO()
    Image.new("1", (10_000, 9_000)).save(buffer, format="PNG")  # 90 MP in ~12 KB
    answer = client.post("/api/jobs", files=files(content=buffer.getvalue()), data={"options": json.dumps(TINY)})
    assert answer.status_code == 413 and "decompression bomb" in answer.json()["error"]


def test_not_multipart_is_415(client):
    answer = client.post("/api/jobs", json={"content": "photo.jpg"})
    assert answer.status_code == 415


def test_a_form_cut_short_is_400_malformed_not_415_not_an_image(client, settings):
    whole = (b"--XX\r\nContent-Disposition: form-data; name=\"content\"; filename=\"a.png\"\r\n"
             b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n")
    answer = client.post("/api/jobs", content=whole, headers={"content-type": "multipart/form-data; boundary=XX"})
    assert answer.status_code == 400 and "closing boundary" in answer.json()["error"]
    assert list((settings.data / "jobs").iterdir()) == []


def test_uploaded_names_are_never_paths(client, settings, tmp_path):
    parts = [("content", ("../../../escape.png", png(), "image/png")),
             ("style", ("..\\..\\style.png", png(), "image/png"))]
    answer = client.post("/api/jobs", files=parts, data={"options": json.dumps(TINY)})
    assert answer.status_code == 201
    job_id = answer.json()["id"]
    wait(client, job_id)
    stored = sorted(p.name for p in (settings.data / "jobs" / job_id).iterdir())
    assert "content_0.upload" in stored and "style_0.upload" in stored
    assert not any((tmp_path / name).exists() for name in ("escape.png", "style.png"))
    assert client.get(f"/api/jobs/{job_id}").json()["inputs"]["content"] == "escape.png"


def test_the_store_makes_no_path_from_an_id_that_is_not_ours(settings):
    store = web_jobs.JobStore(settings.data)
    for bad in ("..", "../x", "/etc/passwd", "0123456789abcdeg", "0123456789abcdef/../..", ""):
        assert store.get(bad) is None
        with pytest.raises(KeyError):
            store.folder(bad)
    assert store.folder("0123456789abcdef") == settings.data / "jobs" / "0123456789abcdef"


def test_a_corrupt_job_record_shows_as_failed_and_stray_folders_go(settings):
    jobs = settings.data / "jobs"
    (jobs / "00000000000000aa").mkdir(parents=True)
    (jobs / "00000000000000aa" / "job.json").write_text("{not json")
    (jobs / "00000000000000bb").mkdir()  # an upload that never became a job
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        status = client.get("/api/jobs/00000000000000aa").json()
        assert status["state"] == "failed" and "unreadable" in status["error"]
    assert not (jobs / "00000000000000bb").exists()


def test_a_checkpoint_that_cannot_be_resumed_starts_the_job_afresh(settings):
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        job_id = submit(client).json()["id"]
        wait(client, job_id)
    folder = settings.data / "jobs" / job_id
    record = json.loads((folder / "job.json").read_text())
    (folder / "job.json").write_text(json.dumps({**record, "state": "running"}))
    (folder / "run.ckpt").write_bytes(b"a checkpoint from another version")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        status = wait(client, job_id)
        assert status["state"] == "done" and status["resumed_from_step"] == 0


def test_a_job_cancelled_while_running_stays_cancelled_after_a_restart(settings):
    """A cancel answered while the run had not yet stopped was lost when the server stopped then: the
    job came back running. The request is recorded at once."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        job_id = submit(client).json()["id"]
        wait(client, job_id)
    folder = settings.data / "jobs" / job_id
    record = json.loads((folder / "job.json").read_text())
    # as a running job's record reads after its DELETE, the server stopped before the run did
    (folder / "job.json").write_text(json.dumps({**record, "state": "running", "cancel_requested": True}))
    (folder / "run.ckpt").write_bytes(b"its checkpoint")
    (folder / "preview.png").write_bytes(png())  # what it had painted when it stopped
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        status = client.get(f"/api/jobs/{job_id}").json()
        assert status["state"] == "cancelled"
        # the picture so far is on disk: the page offers it after a restart too (the flag was in memory)
        assert status["has_preview"] and client.get(f"/api/jobs/{job_id}/preview").status_code == 200
    assert json.loads((folder / "job.json").read_text())["state"] == "cancelled"
    assert not (folder / "run.ckpt").exists()  # as a cancel the run honoured leaves none
    # and the store writes that record the moment a running job's cancel is asked for
    store = web_jobs.JobStore(settings.data)
    running = store.jobs[job_id]
    running.state, running.cancel_requested = web_jobs.RUNNING, False
    assert store.cancel(running) and running.state == web_jobs.RUNNING
    assert json.loads((folder / "job.json").read_text())["cancel_requested"] is True


def test_a_job_cancelled_then_stopped_keeps_its_loss_curve(settings):
    """Cancelled, and the server killed before the run stopped: the restart marks it cancelled and removes
    its checkpoint, and drew no curve, though the README promises a cancelled job's curve across a restart.
    The curve is drawn from the log the checkpoint carried."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        job_id = submit(client).json()["id"]
        wait(client, job_id)
    folder = settings.data / "jobs" / job_id
    (folder / "loss.png").unlink()
    checkpoint, history = painterly.Checkpointer(folder / "run.ckpt", keep=True), painterly.LossHistory()
    checkpoint.extra["log"] = history.records  # as the server's run keeps it
    painterly.stylize(str(folder / "content_0.upload"), [str(folder / "style_0.upload")], callback=history,
                      checkpoint=checkpoint, **TINY)
    assert len(history.records) >= 2
    record = json.loads((folder / "job.json").read_text())
    (folder / "job.json").write_text(json.dumps({**record, "state": "running", "cancel_requested": True}))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        assert client.get(f"/api/jobs/{job_id}").json()["state"] == "cancelled"
        curve = client.get(f"/api/jobs/{job_id}/loss")
        assert curve.status_code == 200 and Image.open(io.BytesIO(curve.content)).size[0] > 100
    assert not (folder / "run.ckpt").exists()


@pytest.mark.parametrize("job_id", ["..", "../../etc", "0123456789abcdeg", "%2e%2e%2fjob.json"])
def test_ids_that_are_not_ours_are_404(client, job_id):
    for path in ("", "/result", "/preview", "/events", "/command"):
        assert client.get(f"/api/jobs/{job_id}{path}").status_code == 404
    assert client.get("/api/examples/..%2f__init__").status_code == 404


def test_cancel_stops_a_running_job_and_the_queue_shows_positions(client):
    first = submit(client, LONG).json()["id"]
    wait(client, first, states=("running",))
    second, third = (submit(client, LONG).json()["id"] for _ in range(2))
    assert client.get(f"/api/jobs/{second}").json()["position"] == 1
    assert client.get(f"/api/jobs/{third}").json()["position"] == 2
    assert client.delete(f"/api/jobs/{second}").json()["state"] == "cancelled"
    assert client.get(f"/api/jobs/{third}").json()["position"] == 1
    assert client.delete(f"/api/jobs/{first}").status_code == 200
    assert wait(client, first)["state"] == "cancelled"
    assert wait(client, third, states=("running",))["state"] == "running"  # the next one starts
    client.delete(f"/api/jobs/{third}")
    assert wait(client, third)["state"] == "cancelled"
    assert client.delete(f"/api/jobs/{third}").status_code == 409


def test_a_failed_job_reports_one_line_in_the_apis_terms_and_the_next_starts(client, monkeypatch):
    real = painterly.stylize
    calls = []

    def fails_first(*args, **kwargs):  # a failure no submission check can foresee (a run's own refusal)
        calls.append(1)
        if len(calls) == 1:
            raise painterly.PainterlyError("this run failed;\n try --max-memory 2 or --style-blend-weights 1,2")
        return real(*args, **kwargs)

    monkeypatch.setattr(painterly, "stylize", fails_first)
    bad = submit(client).json()["id"]
    good = submit(client).json()["id"]
    failed = wait(client, bad)
    assert failed["state"] == "failed"
    assert failed["error"] == "this run failed; try max_memory 2 or style_blend_weights 1,2"
    assert wait(client, good)["state"] == "done"


def test_guided_job_uses_the_painted_regions(client):
    content_map = png((255, 0, 0))  # all red on both: one region, as the page sends them
    answer = client.post("/api/jobs", files=files(content_guidance=("c.png", content_map, "image/png"),
                                                  style_guidance=("s.png", png((255, 0, 0)), "image/png")),
                         data={"options": json.dumps(TINY)})
    status = wait(client, answer.json()["id"])
    assert status["state"] == "done" and status["inputs"]["content_guidance"] and status["inputs"]["style_guidance"] == 1
    command = client.get(f"/api/jobs/{status['id']}/command").json()["command"]
    assert "--content-guidance content_guidance.png --style-guidance style_guidance_1.png" in command


def test_the_event_stream_reports_progress_until_done(client, monkeypatch):
    """The stream looks every 0.2 s: a 48 px job on a fast machine ran whole between two looks, so the run
    waits at its first step until the stream has shown it running (on any machine, at any speed)."""
    import threading

    shown_running = threading.Event()
    step = web_jobs.Previewer.__call__

    def held(self, info):
        shown_running.wait(30)
        step(self, info)

    monkeypatch.setattr(web_jobs.Previewer, "__call__", held)
    job_id = submit(client, {**TINY, "iterations": 6}).json()["id"]
    states, iterations = [], []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                status = json.loads(line[6:])
                states.append(status["state"])
                iterations.append(status["progress"].get("iteration"))
                if status["state"] == "running":
                    shown_running.set()
    assert states[-1] == "done" and "running" in states
    assert status["progress"]["size"] == status["size"] == [48, 36]  # [width, height] while running and when done
    seen = [i for i in iterations if i is not None]
    assert seen == sorted(seen) and seen[-1] == 6


def test_a_run_has_previews_to_show(client):
    job_id = submit(client, {**LONG, "iterations": 60}).json()["id"]
    status = wait(client, job_id)
    assert status["has_preview"] and client.get(f"/api/jobs/{job_id}/preview").status_code == 200
    assert 0 < status["preview_seconds"] < status["progress"]["elapsed"]


def test_previews_cost_under_their_share_of_the_run_on_a_clock_the_test_moves(monkeypatch, tmp_path):
    """Rendering is throttled to PREVIEW_SHARE of the run's time, give or take one render (its cost is known
    only once made). Timed on the machine, the check failed when a busy moment slowed one render; here a
    clock the test moves makes each step 0.1 s and each render 0.3 s."""
    import types

    from helpers import FakeClock

    clock = FakeClock()
    clock.perf_counter = clock.monotonic
    monkeypatch.setattr(web_jobs, "time", clock)
    render = 0.3
    monkeypatch.setattr(web_jobs.painterly, "save_image", lambda image, path: clock.advance(render))
    job = web_jobs.Job(id="0" * 16, method="gatys", options={}, inputs={}, created=0.0)
    previewer = web_jobs.Previewer(job, tmp_path / "preview.png", types.SimpleNamespace(progressed=lambda: None))
    start, renders = clock.now, 0
    for step in range(1, 301):
        clock.advance(0.1)
        shown = job.preview_seconds
        previewer(painterly.StepInfo(step, 300, 0, 1, (8, 8), {"total": 1.0}, clock.now - start, step))
        renders += job.preview_seconds > shown
        assert job.preview_seconds <= web_jobs.PREVIEW_SHARE * (clock.now - start) + render
    assert job.has_preview and renders >= 2  # some previews, not none


def test_a_job_running_when_the_server_stops_resumes_from_its_checkpoint(settings, monkeypatch):
    monkeypatch.setattr(web_jobs, "CHECKPOINT_SECONDS", 0.2)
    options = {**LONG, "iterations": 40, "optimizer": "adam"}
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        job_id = submit(client, options).json()["id"]
        checkpoint = settings.data / "jobs" / job_id / "run.ckpt"
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists()
    # the server stopped mid-run: the job is still 'running' on disk, with its checkpoint
    assert json.loads((settings.data / "jobs" / job_id / "job.json").read_text())["state"] == "running"
    with TestClient(create_app(settings), base_url="http://127.0.0.1:7860") as client:
        status = wait(client, job_id)
        assert status["state"] == "done" and status["resumed_from_step"] > 0
        resumed = Image.open(io.BytesIO(client.get(f"/api/jobs/{job_id}/result").content)).convert("RGB")
        fresh_id = submit(client, options).json()["id"]
        assert wait(client, fresh_id)["resumed_from_step"] == 0
        fresh = Image.open(io.BytesIO(client.get(f"/api/jobs/{fresh_id}/result").content)).convert("RGB")
    import numpy as np

    difference = np.abs(np.asarray(resumed, float) - np.asarray(fresh, float)).max()
    assert difference <= 1, difference  # the resumed job paints what an uninterrupted one paints


def test_host_header_must_name_this_server(client):
    assert client.get("/api/methods", headers={"host": "evil.example:7860"}).status_code == 400
    assert client.get("/api/methods", headers={"host": "localhost:7860"}).status_code == 200
    assert client.get("/api/methods", headers={"host": "127.0.0.1:7860"}).status_code == 200


def test_cross_origin_state_changes_need_the_token(client):
    evil = {"origin": "http://evil.example"}
    answer = client.post("/api/jobs", files=files(), data={"options": json.dumps(TINY)}, headers=evil)
    assert answer.status_code == 403
    same = client.post("/api/jobs", files=files(), data={"options": json.dumps(TINY)},
                       headers={"origin": "http://127.0.0.1:7860"})
    assert same.status_code == 201
    with_token = client.delete(f"/api/jobs/{same.json()['id']}", headers={**evil, "authorization": "Bearer secret-token"})
    assert with_token.status_code in (200, 409)
    # the page's cookie rides along from any page of this host (another port too): not enough to change state
    client.get("/?token=secret-token")
    other_port = client.post("/api/jobs", files=files(), data={"options": json.dumps(TINY)},
                             headers={"origin": "http://127.0.0.1:8888", "sec-fetch-site": "same-site"})
    assert other_port.status_code == 403


def test_a_non_loopback_server_needs_the_token_on_every_request(tmp_path):
    settings = ServerSettings(tmp_path / "data", host="192.0.2.7", token="secret-token", require_token=True)
    with TestClient(create_app(settings), base_url="http://192.0.2.7:7860") as client:
        assert client.get("/api/methods").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/api/methods", headers={"authorization": "Bearer wrong"}).status_code == 401
        page = client.get("/?token=secret-token")
        assert page.status_code == 200 and "painterly_token" in page.headers["set-cookie"]
        assert client.get("/api/methods").status_code == 200  # the cookie from the page
        assert client.get("/api/methods", headers={"host": "127.0.0.1:7860"}).status_code == 400


def test_the_page_and_its_scripts_come_from_the_server_alone(client):
    page = client.get("/").text
    assert "/static/app.js" in page and "http://" not in page and "https://" not in page
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "EventSource" in script.text and "https://" not in script.text
    assert client.get("/static/../server.py").status_code == 404
    assert client.get("/static/server.py").status_code == 404
    assert client.get("/docs").status_code == 404  # FastAPI's page would load Swagger UI from a CDN
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/jobs/{job_id}/events" in paths
    # the form a job is submitted with, described (a generated client could not submit one)
    form = paths["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["content"] and {"content", "style", "options"} <= set(form["properties"])
    assert {"400", "413", "415"} <= set(paths["/api/jobs"]["post"]["responses"])


def test_serve_rejects_bad_flags_in_one_line(capsys, monkeypatch):
    from painterly import web
    from painterly.cli import main

    monkeypatch.setattr(web, "serve", lambda *a, **k: pytest.fail("serve started despite a bad flag"))
    assert main(["serve", "--max-upload-mb", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("painterly: error:") and "max-upload-mb" in err and "\n" not in err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--help"]) == 0


def test_serve_refuses_an_address_it_cannot_bind_or_a_data_file_in_one_line(tmp_path, capsys, monkeypatch):
    """A port in use, an unknown host or --data naming a file: one line, before anything is printed as served,
    no data folder made, uvicorn never started."""
    import socket

    import uvicorn

    from painterly.cli import main

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    (tmp_path / "file").write_text("x")
    for words, fragment in ((["--port", str(port)], "in use"), (["--host", "999.1.1.1"], "cannot serve on 999.1.1.1"),
                            (["--data", str(tmp_path / "file")], "is a file")):
        data = [] if "--data" in words else ["--data", str(tmp_path / "jobs")]
        assert main(["serve", *words, *data]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("painterly: error:") and fragment in err and "\n" not in err, err
        assert not (tmp_path / "jobs").exists()
    taken.close()


def test_head_answers_as_get_on_a_real_server_and_the_connection_goes_on(settings):
    """HEAD rewrote the server's own scope to GET, so uvicorn sent a body after a HEAD's headers: the
    connection broke ("Too much data for declared Content-Length") and the next request got no answer.
    The test client could not show it; a real server on a kept-alive connection does."""
    import http.client
    import socket
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(dataclasses.replace(settings, port=port)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for method, path, kind in (("HEAD", "/api/methods", "application/json"), ("GET", "/api/examples", "json"),
                                   ("HEAD", "/api/examples/tubingen", "image/"), ("GET", "/api/jobs", "json")):
            connection.request(method, path)
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 200 and kind in answer.getheader("content-type"), (method, path)
            assert (body == b"") == (method == "HEAD") and int(answer.getheader("content-length")) > 0
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_long_uploaded_name_keeps_its_extension():
    """Cut at 120 characters, a long name lost its extension, and the job's command named a file without one."""
    from painterly.web.uploads import _display_name

    shown = _display_name(("holiday " * 30 + ".jpeg").encode())
    assert len(shown) <= 120 and shown.endswith("….jpeg")
    assert _display_name(b"..\\..\\x" * 50) == "x"  # still the base name alone
