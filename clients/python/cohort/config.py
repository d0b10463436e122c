"""Where the SDK finds the servers and its trust settings: the same sources, keys and
order as cohortctl's (docs/config.md).

Explicit arguments win over the environment (COHORT_SERVER, COHORT_SCHEDULER,
COHORT_TLS_CA, COHORT_TLS_CERT, COHORT_TLS_KEY, COHORT_TLS_SERVER_NAME, COHORT_TOKEN,
COHORT_TOKEN_FILE), which wins over the config file: $COHORT_CONFIG (which must exist),
else ${XDG_CONFIG_HOME:-~/.config}/cohort/config (which may not); lines `key = value`
with `#` comments and the keys server, scheduler, tls_ca, tls_cert, tls_key,
tls_server_name, token, token_file. token and token_file are one setting: the highest source that gives either
decides (within it, token wins).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import grpc

from cohort._target import channel_target

DEFAULT_SERVER = "127.0.0.1:7070"
# HTTP/2 keepalive of every channel, as the C++ clients' --broker-keepalive and the Node
# SDK's keepaliveMs: a ping after this long without traffic, even on a quiet stream, and a
# redial when one goes unanswered for min(keepalive, 10 s). A caller's own
# grpc.keepalive_* options win.
DEFAULT_KEEPALIVE_MS = 20_000
_KEEPALIVE_TIMEOUT_MS = 10_000
_MAX_CONFIG_BYTES = 64 * 1024


class ConfigError(ValueError):
    """A setting that cannot be used: a malformed config file or an unreadable file it
    names. Messages name the file (and line), never a value (it may be a token)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Connection settings; None means "not given here"."""
    server: str | None = None
    scheduler: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    token: str | None = None
    token_file: str | None = None


_FIELDS = [f.name for f in dataclasses.fields(Settings)]


def config_path(env: Mapping[str, str] | None = None) -> str:
    """$COHORT_CONFIG, else ${XDG_CONFIG_HOME:-~/.config}/cohort/config."""
    env = os.environ if env is None else env
    if env.get("COHORT_CONFIG"):
        return env["COHORT_CONFIG"]
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(base, "cohort", "config")


_PATH_KEYS = {"tls_ca", "tls_cert", "tls_key", "token_file"}


def parse_config(text: str, path: str, home: str = "") -> Settings:
    """A config file's settings, parsed as cohortctl does (docs/config.md): path values
    (tls_ca, tls_cert, tls_key, token_file) are made absolute, "~/" being `home` and a
    relative path relative to the file's directory. ConfigError "<path>:<line>: ..." for
    a line without `=`, an unknown key, a key set twice or an empty value; a value is
    never quoted."""
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        key, eq, value = line.partition("=")
        if not eq:
            raise ConfigError(f"{where}: expected `key = value`")
        key, value = key.strip(), value.strip()
        if key not in _FIELDS:
            raise ConfigError(f'{where}: unknown key "{key[:64]}": use {", ".join(_FIELDS)}')
        if key in first_line:
            raise ConfigError(f'{where}: "{key}" is set twice (first on line {first_line[key]})')
        first_line[key] = number
        if not value:
            raise ConfigError(f'{where}: "{key}" has no value')
        if key in _PATH_KEYS:
            if value.startswith("~/") and home:
                value = os.path.join(home, value[2:])
            elif not os.path.isabs(value):
                value = os.path.normpath(os.path.join(os.path.dirname(path), value))
        values[key] = value
    return Settings(**values)


def _read_config_file(env: Mapping[str, str]) -> Settings:
    path = config_path(env)
    try:
        if os.path.getsize(path) > _MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: over {_MAX_CONFIG_BYTES} bytes")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if env.get("COHORT_CONFIG"):  # a file named explicitly must exist
            raise ConfigError(f"config file {path} (COHORT_CONFIG) does not exist") from None
        return Settings()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} cannot be read: {type(e).__name__}") from None
    return parse_config(text, path, env.get("HOME") or os.path.expanduser("~"))


def resolve(explicit: Settings | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings in effect: explicit over the environment over the config file."""
    env = os.environ if env is None else env
    from_env = Settings(**{name: env.get(f"COHORT_{name.upper()}") or None for name in _FIELDS})
    layers = [explicit or Settings(), from_env, _read_config_file(env)]
    chosen: dict[str, Any] = {}
    for name in _FIELDS:
        if name in ("token", "token_file"):
            continue
        chosen[name] = next((getattr(l, name) for l in layers if getattr(l, name)), None)
    token_layer = next((l for l in layers if l.token or l.token_file), None)
    if token_layer is not None:
        chosen["token"] = token_layer.token or None
        chosen["token_file"] = None if token_layer.token else token_layer.token_file
    return Settings(**chosen)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{what} file {path} cannot be read: {e.strerror}") from None


def token_of(settings: Settings) -> str | None:
    """The bearer token, read from token_file if need be; None for none."""
    if settings.token:
        return settings.token
    if not settings.token_file:
        return None
    token = _read(settings.token_file, "token").decode("utf-8", "replace").strip()
    if not token:
        raise ConfigError(f"token file {settings.token_file} is empty")
    return token


def _with_token(details: Any, header: tuple[str, str]) -> Any:
    metadata = list(details.metadata or []) + [header]
    return details._replace(metadata=grpc.aio.Metadata(*metadata))


# grpc.aio files an interceptor under the first of these kinds it is an instance of: one
# class per kind of call.
class _UnaryUnaryToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._header), request)


class _UnaryStreamToken(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._header), request)


class _StreamStreamToken(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_token(details, self._header), request_iterator)


def _token_interceptors(token: str) -> list[Any]:
    """`authorization: Bearer <token>` on every call, over TLS or plaintext (as
    cohortctl: use TLS off loopback)."""
    header = ("authorization", f"Bearer {token}")
    return [_UnaryUnaryToken(header), _UnaryStreamToken(header), _StreamStreamToken(header)]


def channel_options(options: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """`options` with the keepalive defaults added for every key they do not set; a
    grpc.keepalive_time_ms given alone also sets the answer's timeout to at most it."""
    given = dict(options)
    keepalive = int(given.get("grpc.keepalive_time_ms", DEFAULT_KEEPALIVE_MS))
    defaults = {
        "grpc.keepalive_time_ms": keepalive,
        "grpc.keepalive_timeout_ms": min(keepalive, _KEEPALIVE_TIMEOUT_MS),
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.max_pings_without_data": 0,
    }
    return list(options) + [(k, v) for k, v in defaults.items() if k not in given]


def open_channel(target: str, settings: Settings, credentials: grpc.ChannelCredentials | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to target: one address, or a comma-separated list of a broker
    group's replicas (cohort._target: one channel that connects to the leader and
    follows it). TLS when tls_ca is set (mutual with tls_cert and tls_key;
    tls_server_name overrides the name checked: give it with a list), plaintext
    otherwise; with a token, every call carries it. `credentials` replaces the TLS the settings give.
    Every channel pings as channel_options says."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("tls_cert and tls_key go together")
    if settings.tls_cert and not settings.tls_ca:
        raise ConfigError("tls_cert needs tls_ca")
    try:
        grpc_target = channel_target(target)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    all_options = channel_options(options)
    if credentials is None and settings.tls_ca:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(settings.tls_ca, "tls_ca"),
            private_key=_read(settings.tls_key, "tls_key") if settings.tls_key else None,
            certificate_chain=_read(settings.tls_cert, "tls_cert") if settings.tls_cert else None)
    if credentials is not None and settings.tls_server_name:
        all_options.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    token = token_of(settings)
    interceptors = _token_interceptors(token) if token else None
    if credentials is None:
        return grpc.aio.insecure_channel(grpc_target, options=all_options, interceptors=interceptors)
    return grpc.aio.secure_channel(grpc_target, credentials, options=all_options, interceptors=interceptors)
