"""The HTTP API and the page (FastAPI). Everything the page does goes through the API below, and the
API calls only painterly's public names.

    POST   /api/jobs                 multipart: content, style (1..MAX_STYLES), content_guidance,
                                     style_guidance (one per style), options (JSON) -> 201 {"id": ...}
    GET    /api/jobs                 every job's status, newest first
    GET    /api/jobs/{id}            status: queued (position) / running (progress) / done / failed / cancelled
    GET    /api/jobs/{id}/events     server-sent events: the status at every change, until it finishes
    GET    /api/jobs/{id}/preview    the latest preview PNG;  /result: the result PNG
    GET    /api/jobs/{id}/command    the equivalent `painterly` command line
    DELETE /api/jobs/{id}            cancel;  ?remove=true: delete a finished job and its files
    GET    /api/methods              every method with its options and defaults
    GET    /api/examples, /api/examples/{name}   the bundled example images
    GET    /api/openapi.json         this API as OpenAPI

Every error, the API's own and FastAPI's (no such route, 405, a malformed parameter), answers
{"error": "one line"} with its status; messages from painterly name options as `options` spells them
(web.terms). A job is refused (400) on submission for whatever its run would refuse as it starts.

Safety: the Host header must name the bound host (DNS rebinding); with a token required (any address
but loopback) every request must carry it (?token=, an `Authorization: Bearer` header or the cookie
the page gets); otherwise a state-changing request must come from the page's own origin or carry the
token. Uploads are streamed to disk under our own names, size-limited, and opened by painterly's
loader (decompression-bomb guard included) before a job is accepted. No request names a path: job
ids are checked against a pattern and examples against the bundled list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import json
import secrets
import time
from collections import Counter
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

import painterly

from .jobs import DONE, FINISHED, Job, JobStore
from .terms import api_help, in_api_terms
from .uploads import UploadError, read_form

MAX_STYLES = 8
DEFAULT_MAX_UPLOAD_MB = 25
TOKEN_COOKIE = "painterly_token"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
# Of what a method's run accepts (Recipe.accepts), what a request can carry: colour-coded maps. Style masks
# and init pictures are not uploads here, so /api/methods does not offer them.
UPLOADED_INPUTS = frozenset({"guidance"})


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    data: Path
    host: str = "127.0.0.1"
    port: int = 7860
    token: str = ""
    require_token: bool = False  # True whenever the host is not loopback
    workers: int = 1
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20

    def host_allowed(self, header: str) -> bool:
        """Is `header` (the request's Host) this server? Loopback answers to localhost too; a wildcard
        bind (0.0.0.0, ::) answers to any name, with the token required instead."""
        if self.host in ("0.0.0.0", "::"):  # any name, a missing Host too (the token is required instead)
            return True
        name = host_name(header)
        if name is None:
            return False
        if is_loopback(self.host):
            return name == "localhost" or (_is_ip(name) and is_loopback(name))
        return name == self.host.strip("[]").lower()


def host_name(header: str) -> Optional[str]:
    """The name in a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), lower case; None if it is not
    one ('127.0.0.1:80.evil.com' read as 127.0.0.1 when split at the last colon)."""
    if header.startswith("["):
        name, bracket, port = header[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port[1:]
    else:
        name, _, port = header.partition(":")
    if (port and not port.isdigit()) or not name:
        return None
    return name.lower()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


class HeadAsGet:
    """HEAD answered as GET without its body: FastAPI's routes take GET alone. The app sees a copy of the
    request's scope saying GET (the server keeps its own, which says HEAD), and the body it sends is dropped:
    rewriting the server's scope made uvicorn send a body after a HEAD's headers, which broke the
    connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def headers_only(message) -> None:
            nonlocal ended
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not ended:
                ended = True  # the headers' end; what the GET would stream (events) goes nowhere
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def create_app(settings: ServerSettings) -> FastAPI:
    """The app; its lifespan starts the job workers and, on shutdown, stops them with checkpoints."""
    store = JobStore(settings.data, settings.workers)

    async def lifespan(app: FastAPI):
        store.start()
        yield
        await asyncio.to_thread(store.stop)

    # No /docs or /redoc: FastAPI's pages load Swagger UI from a CDN. The schema itself is served.
    app = FastAPI(title="painterly", version=painterly.__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/api/openapi.json",
                  description="Neural style transfer over HTTP: the API the painterly web app uses.")
    app.state.store = store
    app.state.settings = settings

    # Every error has the API's shape, {"error": "one line"}: FastAPI's own (no such route, a method the
    # route does not take, a malformed parameter) keep their status but not their {"detail": ...}.
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        try:
            if detail == HTTPStatus(exc.status_code).phrase:
                detail = detail.lower()  # "Not Found" -> "not found", as the API's own messages are written
        except ValueError:
            pass
        response = _error(exc.status_code, detail)
        response.headers.update(exc.headers or {})  # 405's Allow
        if exc.status_code == 405:  # Starlette names the first route's methods; every route of the path may answer
            allowed = {method for route in app.routes if getattr(route, "methods", None)
                       and route.matches(request.scope)[0] != Match.NONE for method in route.methods}
            allowed = sorted(allowed | ({"HEAD"} if "GET" in allowed else set()))  # the guard takes HEAD as GET
            response.headers["allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors() or [{}]
        where = " ".join(str(part) for part in errors[0].get("loc", ()))
        # 400 as every other bad request of this API (FastAPI's default is 422)
        return _error(400, f"{where}: {errors[0].get('msg', 'invalid')}" if where else "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"unexpected {type(exc).__name__} in painterly's server")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not settings.host_allowed(request.headers.get("host", "")):
            return _error(400, "this Host is not the one painterly serves (DNS-rebinding protection)")
        def matches(given: Optional[str]) -> bool:
            return bool(given) and hmac.compare_digest(given.encode(), settings.token.encode())

        explicit = matches(request.query_params.get("token")) or matches(
            request.headers.get("authorization", "").removeprefix("Bearer ").strip())
        cookie = f"{TOKEN_COOKIE}_{settings.port}"  # per port: SameSite does not tell ports apart
        if settings.require_token and not (explicit or matches(request.cookies.get(cookie))):
            return _error(401, "open the address with the token that `painterly serve` printed")
        if request.method in STATE_CHANGING and not explicit:
            # a cookie rides along on requests from any page of this host, so it is not enough here
            origin = request.headers.get("origin")
            if (origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}") or \
                    request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return _error(403, "cross-origin requests need the token")
        response = await call_next(request)
        if matches(request.query_params.get("token")):
            response.set_cookie(cookie, settings.token, httponly=True, samesite="strict")
        return response

    # --- the page -----------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(resources.files(__package__).joinpath("static/index.html").read_text())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC:
            return _error(404, "no such file")
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name])

    # --- methods and examples -----------------------------------------------------------------
    @app.get("/api/methods")
    def methods() -> list[dict]:
        return [{"name": name, "summary": recipe.summary, "needs_styles": recipe.needs_styles,
                 "accepts": sorted(recipe.accepts & UPLOADED_INPUTS),
                 "options": [{**record, "help": api_help(record["help"])} for record in painterly.method_options(name)]}
                for name, recipe in painterly.available_methods().items()]

    @app.get("/api/examples")
    def examples() -> list[str]:
        return sorted(painterly.example_images())

    @app.get("/api/examples/{name}")
    def example(name: str) -> Response:
        found = painterly.example_images()
        if name not in found:
            return _error(404, f"no example '{name[:40]}'")
        return FileResponse(found[name])

    # --- jobs ---------------------------------------------------------------------------------
    @app.post("/api/jobs", status_code=201, openapi_extra=SUBMIT_SCHEMA)
    async def submit(request: Request):
        length = request.headers.get("content-length")
        limit = settings.max_upload_bytes * (2 * MAX_STYLES + 2) + 2**20
        if length is not None and length.isdigit() and int(length) > limit:
            return _error(413, f"the request is over {limit // 2**20} MB")
        job_id, folder = store.new_folder()
        try:
            form = await read_form(request.headers.get("content-type", ""), request.stream(), folder,
                                   file_fields={"content": 1, "style": MAX_STYLES, "content_guidance": 1,
                                                "style_guidance": MAX_STYLES},
                                   text_fields={"options"}, max_file_bytes=settings.max_upload_bytes)
            job = await asyncio.to_thread(_accept, job_id, folder, form)
            store.add(job)
        except UploadError as exc:
            store.discard(folder)
            return _error(exc.status, in_api_terms(str(exc)))
        except BaseException:
            store.discard(folder)
            raise
        return JSONResponse({"id": job.id}, status_code=201)

    @app.get("/api/jobs")
    def list_jobs() -> list[dict]:
        return [store.status(j) for j in store.listing()]

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str):
        job = store.get(job_id)
        return _error(404, "no such job") if job is None else store.status(job)

    @app.delete("/api/jobs/{job_id}")
    def cancel(job_id: str, remove: bool = False):
        """Cancel a queued or running job; with remove=true, delete a finished one and its files instead
        (two words, so that a cancel arriving just after the job finished never deletes its result)."""
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        if remove:
            if not store.remove(job):
                return _error(409, f"the job is {job.state}: cancel it, then remove it once it has stopped")
            return {"id": job.id, "removed": True}
        if not store.cancel(job):
            return _error(409, f"the job is already {job.state}")
        return store.status(job)

    @app.get("/api/jobs/{job_id}/preview")
    def preview(job_id: str):
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        path = store.folder(job_id) / ("result.png" if job.state == DONE else "preview.png")
        if not path.exists():
            return _error(404, "no preview yet")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/loss", responses={404: {"description": "no such job, or no curve yet", **_ERROR}})
    def loss(job_id: str):
        """The loss curve (PNG) of a finished or cancelled optimisation: each term over the steps."""
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        path = store.folder(job_id) / "loss.png"
        if not path.exists():
            return _error(404, "no loss curve: the job has not ended, or it is one forward pass")
        return FileResponse(path, media_type="image/png")

    @app.get("/api/jobs/{job_id}/result")
    def result(job_id: str, download: bool = False):
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        if job.state != DONE:
            return _error(404, f"no result: the job is {job.state}")
        name = f"painterly_{job.method}_{job.id}.png"
        return FileResponse(store.folder(job_id) / "result.png", media_type="image/png",
                            filename=name if download else None)

    @app.get("/api/jobs/{job_id}/command")
    def command(job_id: str):
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        try:
            return {"command": _command(job)}
        except painterly.PainterlyError as exc:  # a job kept from a version whose options took other values
            return _error(409, in_api_terms(f"this job's options are no longer valid: {exc}"))

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request):
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")

        async def stream():
            seen, quiet_since = -1, time.monotonic()
            while not await request.is_disconnected():
                if store.version != seen:
                    seen = store.version
                    status = store.status(job)
                    yield f"event: status\ndata: {json.dumps(status)}\n\n"
                    quiet_since = time.monotonic()
                    if status["state"] in FINISHED:
                        return
                elif time.monotonic() - quiet_since > 15:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    app.openapi = lambda: app.openapi_schema or _described(app, FastAPI.openapi(app))
    app.add_middleware(HeadAsGet)  # outermost: the guard and the routes see a GET
    return app


def _no_constant(word: str):
    raise ValueError(f"{word} is not a number painterly takes")


def _no_twice(pairs: list) -> dict:
    """A JSON object whose keys are each given once: {"size": 64, "size": 99} is refused, not last-one-wins
    (as a form field given twice is)."""
    twice = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
    if twice:
        raise ValueError(f"{', '.join(twice)} given twice")
    return dict(pairs)


_BINARY = {"type": "string", "format": "binary"}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
_IMAGE = {"description": "the picture", "content": {"image/png": {"schema": _BINARY}}}
# What FastAPI cannot see from the routes: the bodies that are not JSON, and the errors every route may answer.
OPENAPI_BODIES = {
    ("get", "/api/jobs/{job_id}/preview"): _IMAGE, ("get", "/api/jobs/{job_id}/result"): _IMAGE,
    ("get", "/api/jobs/{job_id}/loss"): {**_IMAGE, "description": "the loss curve"},
    ("get", "/api/examples/{name}"): {"description": "the example image",
                                      "content": {"image/jpeg": {"schema": _BINARY}, "image/png": {"schema": _BINARY}}},
    ("get", "/api/jobs/{job_id}/events"): {"description": "an `event: status` with the job's status at every change",
                                           "content": {"text/event-stream": {"schema": {"type": "string"}}}},
}


def _described(app: FastAPI, schema: dict) -> dict:
    """FastAPI's schema with the real bodies and errors: images and the event stream where it says JSON,
    {"error": ...} where it says {"detail": [...]}, 400 where it says 422, and 401/403/404/409 where they
    happen."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            answers = operation.setdefault("responses", {})
            if (method, path) in OPENAPI_BODIES:
                answers["200"] = OPENAPI_BODIES[(method, path)]
            if answers.pop("422", None) is not None:
                answers.setdefault("400", {"description": "a malformed parameter", **_ERROR})
            if "{job_id}" in path or "{name}" in path:
                answers.setdefault("404", {"description": "no such job or example", **_ERROR})
            if method == "delete":
                answers.setdefault("409", {"description": "cancel: the job has finished; remove: it has not", **_ERROR})
            answers.setdefault("401", {"description": "the token is needed (a server on an address other than "
                                                      "loopback)", **_ERROR})
            if method in ("post", "delete"):
                answers.setdefault("403", {"description": "from another origin without the token", **_ERROR})
    for unused in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(unused, None)
    app.openapi_schema = schema
    return schema


# The form `submit` reads itself (streamed to disk, counted and capped as it arrives), described for clients
# that generate code from the schema: FastAPI sees no parameters to describe it from.
SUBMIT_SCHEMA = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["content"],
        "properties": {
            "content": {**_BINARY, "description": "the photo to repaint"},
            "style": {"type": "array", "items": _BINARY, "maxItems": MAX_STYLES,
                      "description": "style images (none for a trained network)"},
            "content_guidance": {**_BINARY, "description": "a colour-coded region map of the content"},
            "style_guidance": {"type": "array", "items": _BINARY, "description": "one region map per style"},
            "options": {"type": "string", "description": 'JSON: "method" and any of its config fields '
                                                         "(GET /api/methods lists them)"}}}}}},
    "responses": {"201": {"description": "queued: {\"id\": ...}"},
                  "400": {"description": "bad options, a corrupt image, wrong counts, what the run would refuse",
                          **_ERROR},
                  "413": {"description": "a file over the limit, a decompression bomb", **_ERROR},
                  "415": {"description": "not multipart, or not an image", **_ERROR}},
}


def _accept(job_id: str, folder: Path, form) -> Job:
    """Check a submitted form and make its job; UploadError if bad. Everything a run would refuse
    before its work (what `painterly` on the command line refuses before it starts) is refused here,
    before the job is queued: options, images, maps and their counts and shapes, memory, threads."""
    contents, styles = form.named("content"), form.named("style")
    content_guides, style_guides = form.named("content_guidance"), form.named("style_guidance")
    try:
        options = json.loads(form.fields.get("options", "").strip() or "{}", parse_constant=_no_constant,
                             object_pairs_hook=_no_twice)
    except ValueError as exc:
        raise UploadError(400, f"options is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise UploadError(400, "options must be a JSON object of option names and values")
    method = options.pop("method", None)
    if method is not None and not isinstance(method, str):
        raise UploadError(400, "method must be a string")
    if method is not None and not method.strip():  # a blank choice is no choice: not the default's 200 iterations
        raise UploadError(400, f"method is empty; choose from {', '.join(painterly.available_methods())}, or leave "
                               "it out for the one the options pick")
    if "config" in options:  # make_config's own parameter, not an option (it said "takes a AdainConfig config")
        raise UploadError(400, "unknown option config")
    try:
        method = method or painterly.method_for(options)
        painterly.get_method(method)
        painterly.make_config(method, **options)
    except painterly.PainterlyError as exc:
        raise UploadError(400, str(exc)) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise UploadError(400, f"bad options ({exc})") from None
    for record in painterly.method_options(method):
        if record["files"] and record["name"] in options and options[record["name"]] != record["default"]:
            value = options[record["name"]]
            values = value if isinstance(value, list) else [value]
            if any(v not in record["names"] for v in values):
                allowed = ", ".join(record["names"]) or "none (the default only)"
                raise UploadError(400, f"{record['name']} may name a file, which a request must not; "
                                       f"choose from: {allowed}")
    if len(contents) != 1:
        raise UploadError(400, "one content image is needed")
    for upload in form.files:  # an unreadable upload: its own status (415, 413) before the run's checks
        what = upload.field.replace("_", " ") + (" image" if upload.field in ("content", "style") else " map")
        try:
            painterly.open_image(upload.path, what).close()
        except painterly.NotAnImageError:
            raise UploadError(415, f"{what} '{upload.filename}' is not an image painterly can read") from None
        except painterly.ImageTooLargeError:
            raise UploadError(413, f"{what} '{upload.filename}' has too many pixels (possible decompression bomb)") \
                from None
        except painterly.PainterlyError as exc:
            raise UploadError(400, str(exc).replace(str(upload.path), upload.filename)) from None
    try:  # what the run would refuse before its work (maps, counts, shapes, files, threads, memory), refused now
        planned = painterly.preflight(contents[0].path, [s.path for s in styles], method=method,
                                      content_guidance=content_guides[0].path if content_guides else None,
                                      style_guidance=[g.path for g in style_guides] or None, **options)
    except painterly.PainterlyError as exc:
        message = str(exc)
        for upload in form.files:
            message = message.replace(str(upload.path), upload.filename)
        raise UploadError(400, message) from None
    inputs = {"content": contents[0].filename, "styles": [s.filename for s in styles],
              "content_guidance": bool(content_guides), "style_guidance": len(style_guides)}
    takes_seed = any(record["name"] == "seed" for record in painterly.method_options(method))
    if takes_seed and options.get("seed") in (None, painterly.RANDOM_SEED):  # drawn now: its command paints the same picture
        options["seed"] = secrets.randbelow(2**31)
    return Job(id=job_id, method=method, options=options, inputs=inputs, created=time.time(),
               estimated_seconds=round(planned.seconds, 3))


def _command(job: Job) -> str:
    config = painterly.make_config(job.method, **job.options)
    guides = {}
    if job.inputs.get("content_guidance"):
        guides["content_guidance"] = "content_guidance.png"
    if job.inputs.get("style_guidance"):
        guides["style_guidance"] = [f"style_guidance_{i + 1}.png" for i in range(job.inputs["style_guidance"])]
    return painterly.command_line(job.inputs["content"], job.inputs["styles"], f"painterly_{job.id}.png",
                                  job.method, config, **guides)
