"""Run the README tour against a real `jwtauth serve` and print every step's real output.

    .venv/bin/python scripts/readme_tour.py            # print the tour as Markdown
    .venv/bin/python scripts/readme_tour.py --write    # refresh README.md's generated blocks

The server is `jwtauth serve` with the demo fixtures (what `make run` serves), on a free port,
with a fresh signing key in a temporary folder and the embedded store. Each step runs the very
command the README shows — with curl when it is installed, else an equivalent request — and its
output is printed as it came, with two presentation edits only: the free port reads as 8000
(the README talks about `make run`), and tokens and codes are cut after a few characters.

With --write, README.md is edited only between `<!-- tour:NAME -->` and `<!-- /tour -->`
markers; everything else in the file (hand-written prose) is left alone.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "jwtauth" / "fixtures" / "test_credentials.toml"
README = ROOT / "README.md"
SHOWN = "localhost:8000"  # the address the README's commands use (make run)
AUTHORIZE_QUERY = {
    "response_type": "code",
    "client_id": "testclient",
    "redirect_uri": "https://www.example.com",
    "state": "somestate",
}
USER, PASSWORD = "testuser@example.com", "testpassword"
AUDIENCE = "https://api.example.com"
JWTAUTH = [sys.executable, "-m", "jwtauth"]
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
REFRESH = re.compile(r"\b[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b")
CODE = re.compile(r"(code=)([A-Za-z0-9_-]{20,})")
DEVICE_CODE = re.compile(r'("device_code": ")([A-Za-z0-9_-]{43})"')


@dataclass
class Tour:
    """The running server and what earlier steps produced (codes, tokens) for later ones."""

    port: int
    values: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)
    # Resource servers the tour started (examples/), each shown on the port the README uses.
    shown_ports: dict[int, int] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    browser: dict[str, str] = field(default_factory=dict)  # the OpenID Connect session cookie

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shown(self, text: str) -> str:
        """Return output as the README shows it: port 8000, long secrets cut."""
        for real, shown in [(self.port, 8000), *self.shown_ports.items()]:
            for host in ("127.0.0.1", "localhost"):
                text = text.replace(f"{host}:{real}", f"{host}:{shown}")
                text = text.replace(f"{host}%3A{real}", f"{host}%3A{shown}")
        text = JWT.sub(lambda m: m.group(0)[:36] + "…", text)
        # A refresh token is family id . secret: the whole id shows rotation keeps the family.
        text = REFRESH.sub(lambda m: m.group(0)[:29] + "…", text)
        text = DEVICE_CODE.sub(lambda m: m.group(1) + m.group(2)[:10] + '…"', text)
        return CODE.sub(lambda m: m.group(1) + m.group(2)[:10] + "…", text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving() -> Iterator[Tour]:
    """Start `jwtauth serve` on the demo fixtures with a fresh key; stop it afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="jwtauth-tour-") as folder:
        env = {**os.environ, "JWTAUTH_KEYS_DIR": f"{folder}/keys"}
        for name in ("JWTAUTH_REDIS_URL", "JWTAUTH_ISSUER", "JWTAUTH_CONFIG"):
            env.pop(name, None)  # the tour is `make run`: embedded store, derived issuer
        subprocess.run([*JWTAUTH, "keys", "ensure"], env=env, check=True, capture_output=True)
        command = [*JWTAUTH, "serve", "--config", str(FIXTURES), "--port", str(port)]
        with open(f"{folder}/serve.log", "wb") as log:
            proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        tour = Tour(port)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc)
            yield tour
        finally:
            for started in [*tour.processes, proc]:
                started.send_signal(signal.SIGTERM)
                started.wait(timeout=30)


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"jwtauth serve exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(base + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit("jwtauth serve did not become ready")


def run_curl(tour: Tour, command: str) -> str:
    """Run a README curl command against the tour's server; return what it prints."""
    real = command.replace(SHOWN, f"127.0.0.1:{tour.port}")
    for port, shown in tour.shown_ports.items():
        real = real.replace(f"localhost:{shown}", f"127.0.0.1:{port}")
    if shutil.which("curl"):
        done = subprocess.run(
            ["bash", "-c", real],
            capture_output=True,
            text=True,
            env={**os.environ, **tour.values},
            check=True,
        )
        return done.stdout
    return emulate_curl(tour, real)


def emulate_curl(tour: Tour, command: str) -> str:
    """Do what `curl [-i] [-u id:secret] URL [-d BODY]` does, for machines without curl."""
    words = shlex.split(re.sub(r"\$(\w+)", lambda m: tour.values[m.group(1)], command))[1:]
    auth, data, include, url = None, None, False, ""
    headers: dict[str, str] = {}
    while words:
        word = words.pop(0)
        if word == "-H":
            name, _, value = words.pop(0).partition(":")
            headers[name] = value.strip()
        elif word == "-u":
            user, _, secret = words.pop(0).partition(":")
            auth = (user, secret)
        elif word == "-d":
            data = words.pop(0)
        elif word == "-i":
            include = True
        else:
            url = word if "://" in word else "http://" + word
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    method = "POST" if data is not None else "GET"
    answer = requests.request(method, url, data=data, auth=auth, headers=headers, timeout=10)
    if not include:
        return answer.text
    head = [f"HTTP/1.1 {answer.status_code} {answer.reason}"]
    head += [f"{k}: {v}" for k, v in answer.headers.items()]
    return "\r\n".join(head) + "\r\n\r\n" + answer.text


def sign_in(tour: Tour, query: dict[str, str], cookies: dict[str, str] | None = None) -> str:
    """Be the person in the browser: open the authorize page, sign in, allow; return Location.

    `cookies` receives the browser's cookies afterwards (the OpenID Connect session).
    """
    with requests.Session() as browser:
        page = browser.get(f"{tour.base}/authorize/?{urlencode(query)}", timeout=10)
        page.raise_for_status()
        fields = {
            html.unescape(name): html.unescape(value)
            for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
        }
        action = re.search(r'<form method="post" action="([^"]*)"', page.text)
        if action is None:
            raise SystemExit("the authorize page has no form")
        fields.update(username=USER, password=PASSWORD, decision="allow")
        target = urljoin(page.url, html.unescape(action.group(1)))
        answer = browser.post(target, data=fields, allow_redirects=False, timeout=10)
        if cookies is not None:
            cookies.update(browser.cookies.get_dict())
    if answer.status_code != 303:
        raise SystemExit(f"sign-in answered {answer.status_code}: {answer.text[:200]}")
    return answer.headers["Location"]


def hidden_fields(page: str) -> dict[str, str]:
    """Return the hidden inputs of a page, as a browser would post them."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {html.unescape(name): html.unescape(value) for name, value in found}


def approve_device(tour: Tour, name: str) -> str:
    """Be the person with a phone: open the complete URI, continue, sign in, allow."""
    shown_uri = f"http://{SHOWN}/device?user_code={tour.values['USER_CODE']}"
    with requests.Session() as browser:
        page = browser.get(shown_uri.replace(SHOWN, f"127.0.0.1:{tour.port}"), timeout=10)
        page.raise_for_status()
        fields = {**hidden_fields(page.text), "user_code": tour.values["USER_CODE"]}
        consent = browser.post(page.url.partition("?")[0], data=fields, timeout=10)
        fields = {**hidden_fields(consent.text), "username": USER, "password": PASSWORD, "decision": "allow"}
        done = browser.post(page.url.partition("?")[0], data=fields, timeout=10)
    heading = re.search(r"<h1>([^<]*)</h1>", done.text)
    if done.status_code != 200 or heading is None:
        raise SystemExit(f"approving on /device answered {done.status_code}: {done.text[:200]}")
    text = (
        f"GET {shown_uri}\n"
        f"  (click Continue, sign in as {USER} / {PASSWORD}, click Allow)\n\n"
        f"HTTP/1.1 200 OK\n{heading.group(1)}"
    )
    tour.blocks[name] = code_block("text", tour.shown(text))
    return tour.blocks[name]


def code_block(language: str, text: str) -> str:
    return f"```{language}\n{text.rstrip()}\n```"


def step_curl(tour: Tour, name: str, command: str, remember: dict[str, str] | None = None) -> str:
    """Run a curl step; remember JSON fields of its answer as shell variables for later steps."""
    out = run_curl(tour, command)
    if remember:
        body = json.loads(out)
        for variable, key in remember.items():
            tour.values[variable] = body[key]
    tour.blocks[name] = code_block("sh", command) + "\n\n" + code_block("json", tour.shown(out))
    return tour.blocks[name]


def step_authorize(
    tour: Tour, name: str, query: dict[str, str], cookies: dict[str, str] | None = None
) -> str:
    location = sign_in(tour, query, cookies)
    parts = urlsplit(location)
    params = dict(parse_qsl(parts.fragment or parts.query))
    if "code" in params:
        tour.values["CODE"] = params["code"]
    shown_query = urlencode(query, safe=":/")
    text = (
        f"GET http://{SHOWN}/authorize/?{shown_query}\n"
        f"  (sign in as {USER} / {PASSWORD}, click Allow)\n\n"
        f"HTTP/1.1 303 See Other\nLocation: {location}"
    )
    tour.blocks[name] = code_block("text", tour.shown(text))
    return tour.blocks[name]


def step_browser(tour: Tour, name: str, path: str, query: dict[str, str], note: str) -> str:
    """Open a URL in the browser that signed in before (its session cookie); show the answer."""
    answer = requests.get(
        f"{tour.base}{path}?{urlencode(query)}", cookies=tour.browser, allow_redirects=False, timeout=10
    )
    if answer.status_code != 303:
        raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
    params = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    if "code" in params:
        tour.values["CODE"] = params["code"]
    shown = urlencode({k: "$ID_TOKEN" if k == "id_token_hint" else v for k, v in query.items()}, safe=":/$")
    location = answer.headers["Location"]
    text = f"GET http://{SHOWN}{path}?{shown}\n  ({note})\n\nHTTP/1.1 303 See Other\nLocation: {location}"
    tour.blocks[name] = code_block("text", tour.shown(text))
    return tour.blocks[name]


def step_status(tour: Tour, name: str, command: str) -> str:
    """Run a curl -i step and keep only its status line (and body, if any)."""
    out = run_curl(tour, command)
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    text = head.splitlines()[0] + ("\n\n" + body if body.strip() else "")
    tour.blocks[name] = code_block("sh", command) + "\n\n" + code_block("text", tour.shown(text))
    return tour.blocks[name]


def step_decode(tour: Tour, name: str) -> str:
    shown = f'.venv/bin/jwtauth decode "$ACCESS_TOKEN" --audience {AUDIENCE}'
    done = subprocess.run(
        [*JWTAUTH, "decode", tour.values["ACCESS_TOKEN"], "--url", tour.base, "--audience", AUDIENCE],
        capture_output=True,
        text=True,
        check=False,
    )
    # Relative times ("in 899 s") differ on every run; the dates are what the reader needs.
    out = re.sub(r" \((in \d+ s|\d+ s ago)\)", "", done.stdout)
    tour.blocks[name] = code_block("sh", shown) + "\n\n" + code_block("text", tour.shown(out))
    return tour.blocks[name]


VERIFY_EXAMPLE = """\
from jwtauth.verify import InvalidToken, Verifier

verifier = Verifier(issuer="http://127.0.0.1:8000", audience="https://api.example.com")
try:
    claims = verifier.verify(token)  # signature (key from /jwks, cached), typ, iss, aud, exp
    print("ok:", claims["sub"], claims["scope"])
except InvalidToken as exc:
    print("refused:", exc.reason)
"""


def step_verify(tour: Tour, name: str) -> str:
    """Run the README's resource-server example on a good and a tampered token."""
    program = VERIFY_EXAMPLE.replace("127.0.0.1:8000", f"127.0.0.1:{tour.port}")
    token = tour.values["ACCESS_TOKEN"]
    head, body, _ = token.split(".")
    forged_claims = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b'"read', b'"admin read')
    forged = f"{head}.{base64.urlsafe_b64encode(forged_claims).rstrip(b'=').decode()}.{token.split('.')[2]}"
    outputs = []
    for candidate in (token, forged):
        done = subprocess.run(
            [sys.executable, "-c", f"token = {candidate!r}\n" + program],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        outputs.append(done.stdout.strip())
    tour.blocks[name] = (
        code_block("python", VERIFY_EXAMPLE) + "\n\n" + code_block("text", tour.shown("\n".join(outputs)))
    )
    return tour.blocks[name]


DPOP_EXAMPLE = """\
import jwt
from requests_oauth2client import DPoPKey, OAuth2Client

client = OAuth2Client(token_endpoint="http://127.0.0.1:8000/api/v1/tokens", client_id="testclient",
                      client_secret="testpassword", testing=True)  # testing: plain http on loopback
key = DPoPKey.generate(alg="ES256")  # the client's own key; only its public half is ever sent
token = client.client_credentials(scope="read", dpop_key=key)  # a DPoP proof rides along
claims = jwt.decode(token.access_token, options={"verify_signature": False})
print(token.token_type, claims["cnf"]["jkt"] == key.private_key.public_jwk().thumbprint())
"""


def step_dpop(tour: Tour, name: str) -> str:
    """Run the README's DPoP client example (requests-oauth2client) against the tour's server."""
    program = DPOP_EXAMPLE.replace("127.0.0.1:8000", f"127.0.0.1:{tour.port}")
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT
    )
    tour.blocks[name] = code_block("python", DPOP_EXAMPLE) + "\n\n" + code_block("text", done.stdout.strip())
RESOURCE_PORT = 8001  # examples/resource_server.py as the README starts it


def start_resource_server(tour: Tour) -> None:
    """Start examples/resource_server.py against the tour's server, as the README shows."""
    port = free_port()
    command = [sys.executable, "examples/resource_server.py", "--issuer", tour.base]
    command += ["--resource", AUDIENCE, "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tour.processes.append(proc)
    tour.shown_ports[port] = RESOURCE_PORT
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(f"http://127.0.0.1:{port}/hello", timeout=1)
            return
        time.sleep(0.1)
    raise SystemExit("examples/resource_server.py did not start")


def step_challenge(tour: Tour, name: str) -> str:
    """Call the resource server without a token: show the status and the challenge."""
    start_resource_server(tour)
    command = f"curl -i localhost:{RESOURCE_PORT}/hello"
    out = run_curl(tour, command).replace("\r\n", "\n")
    head = out.partition("\n\n")[0].splitlines()
    kept = [head[0], *(line for line in head[1:] if line.lower().startswith("www-authenticate"))]
    tour.blocks[name] = code_block("sh", command) + "\n\n" + code_block("text", tour.shown("\n".join(kept)))
    return tour.blocks[name]


RS_DPOP_EXAMPLE = """\
import requests
from requests_oauth2client import DPoPKey, OAuth2Client

client = OAuth2Client(token_endpoint="http://127.0.0.1:8000/api/v1/tokens", client_id="testclient",
                      client_secret="testpassword", testing=True)
token = client.client_credentials(scope="read", dpop_key=DPoPKey.generate(alg="ES256"))
hello = requests.get("http://127.0.0.1:8001/hello", auth=token)  # DPoP <token> + a fresh proof
print(hello.status_code, hello.json())
as_bearer = {"Authorization": f"Bearer {token.access_token}"}  # what a thief would send
refused = requests.get("http://127.0.0.1:8001/hello", headers=as_bearer)
print(refused.status_code, refused.headers["WWW-Authenticate"].split(", ")[:3])
"""


def step_rs_dpop(tour: Tour, name: str) -> str:
    """Call examples/resource_server.py with a DPoP-bound token, then with it as a bearer token."""
    (real,) = [port for port, shown in tour.shown_ports.items() if shown == RESOURCE_PORT]
    program = RS_DPOP_EXAMPLE.replace("127.0.0.1:8000", f"127.0.0.1:{tour.port}")
    program = program.replace(f"127.0.0.1:{RESOURCE_PORT}", f"127.0.0.1:{real}")
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT
    )
    out = code_block("text", tour.shown(done.stdout.strip()))
    tour.blocks[name] = code_block("python", RS_DPOP_EXAMPLE) + "\n\n" + out
    return tour.blocks[name]


BASIC = "curl -u testclient:testpassword"
TOKENS = f"{SHOWN}/api/v1/tokens/"
LOGIN = "grant_type=password&username=testuser@example.com&password=testpassword"
NEW_PAIR = {"ACCESS_TOKEN": "access_token", "REFRESH_TOKEN": "refresh_token"}
REFRESH_BODY = '"grant_type=refresh_token&refresh_token=$REFRESH_TOKEN"'
INTROSPECT = f'{BASIC} {SHOWN}/api/v1/introspect -d "token=$ACCESS_TOKEN"'
IMPLICIT_QUERY = {**AUTHORIZE_QUERY, "response_type": "token"}
CLIENT_CREDENTIALS = f"{BASIC} {TOKENS} -d 'grant_type=client_credentials'"
IN_BODY = "client_id=testclient&client_secret=testpassword"
CLIENT_CREDENTIALS_BODY = f"curl {TOKENS} -d 'grant_type=client_credentials&{IN_BODY}'"
REVOKE = f'{BASIC} -i {SHOWN}/api/v1/revoke -d "token=$REFRESH_TOKEN"'
PUSHED = "response_type=code&redirect_uri=https://www.example.com&scope=read&state=somestate"
PAR = f"{BASIC} {SHOWN}/api/v1/par -d '{PUSHED}'"  # RFC 9126
DEVICE_REQUEST = f"{BASIC} {SHOWN}/api/v1/device_authorization -d 'scope=read'"
DEVICE_CODES = {"DEVICE_CODE": "device_code", "USER_CODE": "user_code"}
OIDC_QUERY = {**AUTHORIZE_QUERY, "scope": "openid profile email", "nonce": "n-0S6_WzA2Mj"}
OIDC_EXCHANGE = f'{BASIC} {TOKENS} -d "grant_type=authorization_code&code=$CODE"'
OIDC_TOKENS = {"OIDC_TOKEN": "access_token", "ID_TOKEN": "id_token"}
USERINFO = f'curl -H "Authorization: Bearer $OIDC_TOKEN" {SHOWN}/api/v1/userinfo'
LOGGED_OUT = "https://www.example.com/logged-out"
SSO_QUERY = {**OIDC_QUERY, "prompt": "none"}
SSO_NOTE = "the same browser: its session cookie stands in for the password"
LOGOUT_NOTE = "the session ends, with its refresh tokens; back-channel clients are told"


def step_logout(tour: Tour, name: str) -> str:
    """Log out of the tour's OpenID Connect sign-in (RP-initiated, with the id_token as hint)."""
    query = {"id_token_hint": tour.values["ID_TOKEN"], "post_logout_redirect_uri": LOGGED_OUT, "state": "bye"}
    return step_browser(tour, name, "/logout", query, LOGOUT_NOTE)
DEVICE_POLL = (
    f'{BASIC} {TOKENS} -d "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=$DEVICE_CODE"'
)


def steps() -> list[tuple[str, Callable[[Tour, str], str]]]:
    """Return the tour in README order: (block name, what produces that block)."""

    def curl(command: str, remember: dict[str, str] | None = None) -> Callable[[Tour, str], str]:
        return lambda tour, name: step_curl(tour, name, command, remember)

    return [
        ("client-credentials", curl(CLIENT_CREDENTIALS, {"ACCESS_TOKEN": "access_token"})),
        ("client-credentials-body", curl(CLIENT_CREDENTIALS_BODY)),
        ("decode", step_decode),
        ("authorize-code", lambda tour, name: step_authorize(tour, name, AUTHORIZE_QUERY)),
        ("code-exchange", curl(f'{BASIC} {TOKENS} -d "grant_type=authorization_code&code=$CODE"')),
        ("authorize-implicit", lambda tour, name: step_authorize(tour, name, IMPLICIT_QUERY)),
        ("password", curl(f"{BASIC} {TOKENS} -d '{LOGIN}'", NEW_PAIR)),
        ("refresh", curl(f"{BASIC} {TOKENS} -d {REFRESH_BODY}", NEW_PAIR)),
        ("introspect", curl(INTROSPECT)),
        ("revoke", lambda tour, name: step_status(tour, name, REVOKE)),
        ("introspect-revoked", curl(INTROSPECT)),
        ("refresh-revoked", curl(f"{BASIC} {TOKENS} -d {REFRESH_BODY}")),
        ("device-authorization", curl(DEVICE_REQUEST, DEVICE_CODES)),
        ("device-approve", approve_device),
        ("device-poll", curl(DEVICE_POLL)),
        ("oidc-authorize", lambda tour, name: step_authorize(tour, name, OIDC_QUERY, tour.browser)),
        ("oidc-code-exchange", curl(OIDC_EXCHANGE, OIDC_TOKENS)),
        ("oidc-userinfo", curl(USERINFO)),
        ("oidc-sso", lambda tour, name: step_browser(tour, name, "/authorize/", SSO_QUERY, SSO_NOTE)),
        ("oidc-logout", step_logout),
        ("jwks", curl(f"curl {SHOWN}/jwks")),
        ("verify", step_verify),
        ("dpop", step_dpop),
        ("par", curl(PAR, {"REQUEST_URI": "request_uri"})),
        ("authorize-par", lambda tour, name: step_authorize(
            tour, name, {"client_id": "testclient", "request_uri": tour.values["REQUEST_URI"]})),
        ("rs-challenge", step_challenge),
        ("rs-metadata", curl(f"curl localhost:{RESOURCE_PORT}/.well-known/oauth-protected-resource")),
        ("rs-token", curl(f"{BASIC} {TOKENS} -d 'grant_type=client_credentials&scope=read'",
                          {"API_TOKEN": "access_token"})),
        ("rs-hello", curl(f'curl -H "Authorization: Bearer $API_TOKEN" localhost:{RESOURCE_PORT}/hello')),
        ("rs-dpop", step_rs_dpop),
    ]  # fmt: skip


def write_readme(blocks: dict[str, str], path: Path = README) -> list[str]:
    """Replace each `<!-- tour:NAME -->…<!-- /tour -->` block of the README; return the names."""
    text = path.read_text(encoding="utf-8")
    done: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in blocks:
            raise SystemExit(f"README.md has a tour block {name!r} that the script does not make")
        done.append(name)
        return f"<!-- tour:{name} -->\n{blocks[name]}\n<!-- /tour -->"

    new = re.sub(r"<!-- tour:([\w-]+) -->\n.*?<!-- /tour -->", replace, text, flags=re.DOTALL)
    path.write_text(new, encoding="utf-8")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md's generated blocks in place")
    args = parser.parse_args()
    with serving() as tour:
        for name, produce in steps():
            produce(tour, name)
            if not args.write:
                print(f"<!-- tour:{name} -->\n{tour.blocks[name]}\n<!-- /tour -->\n")
    if args.write:
        names = write_readme(tour.blocks)
        print(f"README.md: refreshed {len(names)} block(s): {', '.join(names) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
