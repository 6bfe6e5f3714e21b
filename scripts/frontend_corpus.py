#!/usr/bin/env python3
"""Real built frontends, hashed by stamp and loaded in a real browser.

The frontends come from PyPI wheels (pinned below) and are built here where the wheel ships a
builder rather than a site: gradio's Vite frontend (run by gradio's own server), a site built with
mkdocs-material, a Sphinx site with sphinx_rtd_theme, swagger-ui (swagger-ui-bundle) and Django's
admin (its static files and its login page as Django renders it). Everything downloaded or built
is cached in --cache (default $STAMP_TEST_CACHE or ~/.cache/stamp-test), outside the clone.

For each frontend: `stamp assets hash` (exit 0), `stamp assets verify` on the output (exit 0),
hashing the output again (changes nothing), a byte of an immutable file changed (verify exits 1
naming it); then the input and the output are served on 127.0.0.1 and every page is loaded in
headless Chromium (Debian's, driven by Playwright): the output must make no failed request the
input did not make, and render the same text. One JSON object per frontend on stdout.

Exit 0 when the checks ran (the JSON says how they went), 77 when PyPI cannot be reached to set
the corpus up, 1 on a harness error.
"""
import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

PACKAGES = ["playwright==1.65.2", "gradio==6.31.0", "mkdocs-material==9.8.2", "mkdocs==1.6.1", "sphinx==9.0.4",
            "sphinx_rtd_theme==3.1.0", "swagger-ui-bundle==1.1.0", "django==5.2.19"]
CHROMIUM = "/usr/lib/chromium/chromium"
NAMES = ["gradio", "mkdocs-material", "sphinx-rtd", "swagger-ui", "django-admin"]
# stamp build --hash-assets on an anything-llm-shaped image whose frontend is a real Vite build.
IMAGE = "anything-llm-image"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def venv_python(cache):
    return os.path.join(cache, "venv", "bin", "python")


def ensure_venv(cache):
    """A virtualenv with the pinned packages; 77 when PyPI cannot be reached."""
    marker = os.path.join(cache, "venv", ".stamp-packages")
    want = "\n".join(PACKAGES)
    if os.path.exists(marker) and open(marker).read() == want:
        return
    log(f"corpus: installing {len(PACKAGES)} packages into {cache}/venv (once)")
    subprocess.run([sys.executable, "-m", "venv", os.path.join(cache, "venv")], check=True)
    r = subprocess.run([venv_python(cache), "-m", "pip", "install", "-q", "--disable-pip-version-check"] + PACKAGES,
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(r.stderr[-2000:])
        print(json.dumps({"skipped": "PyPI cannot be reached: pip install failed"}))
        sys.exit(77)
    open(marker, "w").write(want)


def site_packages(cache):
    out = subprocess.run([venv_python(cache), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def run_in_venv(cache, code, cwd=None, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([venv_python(cache), "-c", code], cwd=cwd, capture_output=True, text=True, env=e)
    if r.returncode != 0:
        raise RuntimeError(f"building the corpus failed:\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}")


DOC = """# stamp corpus

A page with **text** that the test compares, a [second page](second.md), code and search.

```python
print("hello")
```
"""


def build_frontend(cache, name):
    """The input folder of a frontend, built once into the cache."""
    root = os.path.join(cache, "frontends", name)
    done = os.path.join(cache, "frontends", f".{name}.done")
    if os.path.exists(done):
        return root
    shutil.rmtree(root, ignore_errors=True)
    sp = site_packages(cache)
    work = tempfile.mkdtemp(prefix=f"stamp-corpus-{name}-")
    try:
        if name == "gradio":
            shutil.copytree(os.path.join(sp, "gradio", "templates", "frontend"), root)
        elif name == "swagger-ui":
            # Configured as a deployer does: swagger-initializer.js names the app's own spec.
            vendor = os.path.join(sp, "swagger_ui_bundle", "vendor")
            shutil.copytree(os.path.join(vendor, sorted(os.listdir(vendor))[-1]), root)
            init = os.path.join(root, "swagger-initializer.js")
            text = open(init).read()
            assert "https://petstore.swagger.io/v2/swagger.json" in text
            open(init, "w").write(text.replace("https://petstore.swagger.io/v2/swagger.json", "openapi.json"))
            json.dump({"openapi": "3.0.3", "info": {"title": "stamp corpus API", "version": "1.0"},
                       "paths": {"/api/ping": {"get": {"summary": "Liveness", "responses": {"200": {"description": "online"}}}}}},
                      open(os.path.join(root, "openapi.json"), "w"))
        elif name == "mkdocs-material":
            os.makedirs(os.path.join(work, "docs"))
            open(os.path.join(work, "docs", "index.md"), "w").write(DOC)
            open(os.path.join(work, "docs", "second.md"), "w").write("# Second\n\nMore text, [back](index.md).\n")
            open(os.path.join(work, "mkdocs.yml"), "w").write(
                "site_name: stamp corpus\ntheme:\n  name: material\n  features: [navigation.instant, search.highlight]\n"
                "plugins:\n  - search:\n      lang: [en, de]\n")
            run_in_venv(cache, "import sys; from mkdocs.__main__ import cli; sys.argv=['mkdocs','build','-q','-d',%r]; cli()" % root, cwd=work)
        elif name == "sphinx-rtd":
            os.makedirs(os.path.join(work, "src"))
            open(os.path.join(work, "src", "conf.py"), "w").write("project='stamp corpus'\nhtml_theme='sphinx_rtd_theme'\n")
            open(os.path.join(work, "src", "index.rst"), "w").write(
                "stamp corpus\n============\n\nA page with text.\n\n.. toctree::\n\n   second\n\n.. code-block:: python\n\n   print('hello')\n")
            open(os.path.join(work, "src", "second.rst"), "w").write("Second\n======\n\nMore text.\n")
            run_in_venv(cache, "import sys; from sphinx.cmd.build import main; sys.exit(main(['-q','-b','html',%r,%r]))"
                        % (os.path.join(work, "src"), root))
        elif name == "django-admin":
            # The admin's static files, and its login page as Django renders it (STATIC_URL /static/).
            shutil.copytree(os.path.join(sp, "django", "contrib", "admin", "static"), os.path.join(root, "static"))
            code = """
import django
from django.conf import settings
settings.configure(DEBUG=False, SECRET_KEY='corpus', ALLOWED_HOSTS=['*'], ROOT_URLCONF=__name__, STATIC_URL='/static/',
    INSTALLED_APPS=['django.contrib.admin','django.contrib.auth','django.contrib.contenttypes','django.contrib.sessions','django.contrib.messages'],
    MIDDLEWARE=['django.contrib.sessions.middleware.SessionMiddleware','django.contrib.auth.middleware.AuthenticationMiddleware','django.contrib.messages.middleware.MessageMiddleware'],
    TEMPLATES=[{'BACKEND':'django.template.backends.django.DjangoTemplates','APP_DIRS':True,'OPTIONS':{'context_processors':['django.template.context_processors.request','django.contrib.auth.context_processors.auth','django.contrib.messages.context_processors.messages']}}],
    DATABASES={'default':{'ENGINE':'django.db.backends.sqlite3','NAME':':memory:'}}, USE_TZ=True)
django.setup()
from django.urls import path
from django.contrib import admin
urlpatterns=[path('admin/', admin.site.urls)]
from django.core.management import call_command
call_command('migrate', verbosity=0)
from django.test import Client
html = Client().get('/admin/login/').content
open(%r,'wb').write(html)
""" % os.path.join(root, "index.html")
            run_in_venv(cache, code)
        else:
            raise SystemExit(f"unknown frontend {name}")
        open(done, "w").write("ok")
        return root
    finally:
        shutil.rmtree(work, ignore_errors=True)


PAGES = {
    "gradio": ["/"],
    "mkdocs-material": ["/index.html", "/second/index.html"],
    "sphinx-rtd": ["/index.html", "/second.html", "/search.html?q=text", "/genindex.html"],
    "swagger-ui": ["/index.html"],
    "django-admin": ["/index.html"],
}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@contextlib.contextmanager
def static_server(folder):
    handler = functools.partial(QuietHandler, directory=folder)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


GRADIO_APP = """
import os, sys
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
import gradio as gr
assert gr.__file__.startswith(sys.argv[2]), gr.__file__
def greet(name): return 'Hello ' + name
demo = gr.Interface(fn=greet, inputs='text', outputs='text', title='stamp corpus')
demo.launch(server_name='127.0.0.1', server_port=int(sys.argv[1]), share=False, prevent_thread_lock=False)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gradio_server(cache, frontend):
    """gradio's own server, from the wheel, with its frontend folder swapped for `frontend`."""
    sp = site_packages(cache)
    farm = tempfile.mkdtemp(prefix="stamp-gradio-")
    pkg = os.path.join(farm, "gradio")
    os.makedirs(os.path.join(pkg, "templates"))
    for e in os.listdir(os.path.join(sp, "gradio")):
        if e not in ("templates", "__pycache__"):
            os.symlink(os.path.join(sp, "gradio", e), os.path.join(pkg, e))
    for e in os.listdir(os.path.join(sp, "gradio", "templates")):
        if e != "frontend":
            os.symlink(os.path.join(sp, "gradio", "templates", e), os.path.join(pkg, "templates", e))
    os.symlink(os.path.abspath(frontend), os.path.join(pkg, "templates", "frontend"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=farm, PYTHONDONTWRITEBYTECODE="1", GRADIO_ANALYTICS_ENABLED="False")
    logf = open(os.path.join(farm, "server.log"), "w")
    proc = subprocess.Popen([venv_python(cache), "-c", GRADIO_APP, str(port), farm], env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("gradio exited: " + open(os.path.join(farm, "server.log")).read()[-2000:])
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("gradio did not start in 90 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(farm, ignore_errors=True)


def server_for(cache, name, folder):
    return gradio_server(cache, folder) if name == "gradio" else static_server(folder)


def load_pages(browser, base, pages):
    """Per page: the failed same-origin requests (HTTP >= 400, or not answered), its text, and
    how many requests it made."""
    out = []
    for page_path in pages:
        page = browser.new_page()
        failed, requested = set(), []
        page.on("request", lambda r: requested.append(r.url))
        page.on("requestfailed", lambda r: failed.add(r.url) if r.url.startswith(base) else None)
        page.on("response", lambda r: failed.add(r.url) if r.url.startswith(base) and r.status >= 400 else None)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)[:200]))
        page.goto(base + page_path, wait_until="networkidle", timeout=60000)
        page.wait_for_timeout(800)
        text = page.inner_text("body").replace(base, "BASE")
        paths = [u[len(base):].split("?")[0] for u in requested if u.startswith(base)]
        out.append({"page": page_path, "failed": sorted(u[len(base):] for u in failed), "text": text,
                    "requests": len(paths), "paths": paths, "errors": errors})
        page.close()
    return out


def stamp(bin_, *args):
    r = subprocess.run([bin_] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def check(cache, bin_, name, browser):
    src = build_frontend(cache, name)
    work = tempfile.mkdtemp(prefix=f"stamp-corpus-{name}-out-")
    res = {"name": name, "files": sum(len(f) for _, _, f in os.walk(src))}
    try:
        out = os.path.join(work, "out")
        t0 = time.time()
        code, so, se = stamp(bin_, "assets", "hash", src, "--output", out, "--json")
        res["hash_exit"] = code
        res["hash_seconds"] = round(time.time() - t0, 2)
        if code != 0:
            res["hash_error"] = se.strip()
            return res
        report = json.loads(so)
        renamed = set(report["renamed"].values())
        res["renamed"] = len(renamed)
        res["kept"] = len(report["kept"])
        res["bundler"] = len([v for v in report["kept"].values() if v.startswith("named by its bundler")])
        code, so, se = stamp(bin_, "assets", "verify", out)
        res["verify_exit"] = code
        res["verify_findings"] = so.strip().splitlines()[:10]
        out2 = os.path.join(work, "out2")
        code, so, se = stamp(bin_, "assets", "hash", out, "--output", out2, "--json")
        same = subprocess.run(["diff", "-r", "-q", out, out2], capture_output=True, text=True)
        res["rehash_unchanged"] = code == 0 and same.returncode == 0 and not json.loads(so)["renamed"]
        # One byte of an immutable file changed: verify must fail naming it.
        manifest = json.load(open(os.path.join(out, "stamp-assets.json")))
        immutable = sorted(e["path"] for e in manifest["files"].values() if e.get("cache") == "immutable" and e["size"] > 0)
        if immutable:
            target = immutable[len(immutable) // 2]
            out3 = os.path.join(work, "out3")
            shutil.copytree(out, out3)
            with open(os.path.join(out3, target), "r+b") as f:
                b = f.read(1)
                f.seek(0)
                f.write(bytes([b[0] ^ 1]))
            code, so, se = stamp(bin_, "assets", "verify", out3)
            res["tampered"] = target
            res["tamper_exit"] = code
            res["tamper_named"] = any(line.startswith(target + ":") for line in so.splitlines())
        # The real consumer: the browser.
        pages = PAGES[name]
        with server_for(cache, name, src) as base:
            before = load_pages(browser, base, pages)
        with server_for(cache, name, out) as base:
            after = load_pages(browser, base, pages)
        res["pages"] = []
        for b, a in zip(before, after):
            res["pages"].append({"page": b["page"], "input_failed": b["failed"], "new_failures": sorted(set(a["failed"]) - set(b["failed"])),
                                 "same_text": a["text"] == b["text"], "text_chars": len(a["text"]), "requests": a["requests"],
                                 "new_errors": [e for e in a["errors"] if e not in b["errors"]],
                                 # Requests for names stamp gave: the renames are live.
                                 "renamed_requests": len([q for q in a["paths"] if q.lstrip("/") in renamed])})
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sh(*args, cwd=None):
    r = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-1500:]}")
    return r.stdout


def add_layer(layout, folder, dest):
    """Adds `folder` as `dest` to the one image of an OCI layout, in a layer of its own written by
    Python's tarfile (an opaque whiteout first, so it replaces what the base had there; files
    owned by 1000:1000 as anything-llm's are)."""
    import gzip
    import hashlib
    import io
    import tarfile

    def blob(d):
        return os.path.join(layout, "blobs", "sha256", d.split(":")[1])

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, path=None):
            info = t.gettarinfo(path, name) if path else tarfile.TarInfo(name)
            info.uid = info.gid = 1000
            info.uname = info.gname = ""
            info.mtime = 1700000000
            if path and os.path.isfile(path):
                with open(path, "rb") as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
        d = dest.strip("/")
        add(d, folder)
        add(d + "/.wh..wh..opq")
        for top, dirs, files in os.walk(folder):
            dirs.sort()
            for n in sorted(dirs) + sorted(files):
                full = os.path.join(top, n)
                add(d + "/" + os.path.relpath(full, folder), full)
    tar = raw.getvalue()
    gz = gzip.compress(tar, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    digest = "sha256:" + hashlib.sha256(gz).hexdigest()
    open(blob(digest), "wb").write(gz)

    def put(doc):
        b = json.dumps(doc, separators=(",", ":")).encode()
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        open(blob(d), "wb").write(b)
        return d, len(b)
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = index["manifests"][0]
    manifest = json.load(open(blob(desc["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created_by": f"frontend_corpus.py: {dest} from a wheel"})
    manifest["config"]["digest"], manifest["config"]["size"] = put(config)
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": len(gz)})
    desc["digest"], desc["size"] = put(manifest)
    json.dump(index, open(os.path.join(layout, "index.json"), "w"))


def anything_llm_shape(vite, dest):
    """gradio's Vite build as anything-llm builds its own (Vite's `entryFileNames: "index.js"`):
    the entry script and style sheet unhashed, every chunk importing the entry by that name."""
    import re
    shutil.copytree(vite, dest)
    html = open(os.path.join(dest, "index.html")).read()
    js = re.search(r'assets/(index-[A-Za-z0-9_-]{8}\.js)', html).group(1)
    css = re.search(r'assets/(index-[A-Za-z0-9_-]{8}\.css)', html).group(1)
    os.rename(os.path.join(dest, "assets", js), os.path.join(dest, "assets", "index.js"))
    os.rename(os.path.join(dest, "assets", css), os.path.join(dest, "assets", "index.css"))
    for top, _, files in os.walk(dest):
        for n in files:
            if n.endswith((".js", ".css", ".html", ".json")):
                p = os.path.join(top, n)
                t = open(p, encoding="utf-8", errors="surrogateescape").read()
                u = t.replace(js, "index.js").replace(css, "index.css")
                if u != t:
                    open(p, "w", encoding="utf-8", errors="surrogateescape").write(u)


def check_image(cache, bin_, browser):
    """The sample anything-llm image with gradio's Vite frontend, shaped as anything-llm's
    (`anything_llm_shape`), as /app/server/public (added as its own layer), stamped with --hash-assets, unpacked by umoci, and served from
    the unpacked folder by the real server of that frontend."""
    work = tempfile.mkdtemp(prefix="stamp-corpus-image-")
    res = {"name": IMAGE}
    try:
        vite = f"{work}/frontend"
        anything_llm_shape(build_frontend(cache, "gradio"), vite)
        sh(bin_, "sample", "--output", f"{work}/sample.tar")
        sh("skopeo", "copy", "--override-arch", "amd64", "--override-os", "linux", f"oci-archive:{work}/sample.tar:1.16.0", f"oci:{work}/base:1.16.0")
        # (Debian 12's umoci insert writes this layer truncated: stamp, bsdtar and Python's tarfile
        # all refuse it; so the layer is written here.)
        add_layer(f"{work}/base", vite, "/app/server/public")
        env = dict(os.environ, SOURCE_DATE_EPOCH="1743811200")
        r = subprocess.run([bin_, "build", "--base", f"oci:{work}/base:1.16.0", "--version", "v2.1-canary", "--revision", "0" * 40,
                            "--hash-assets", "--output", f"oci-archive:{work}/out.tar"], capture_output=True, text=True, env=env)
        res["build_exit"] = r.returncode
        if r.returncode != 0:
            res["build_error"] = r.stderr.strip()[-800:]
            return res
        res["verify_exit"] = subprocess.run([bin_, "verify", f"{work}/out.tar"], capture_output=True, text=True).returncode
        sh("skopeo", "copy", f"oci-archive:{work}/out.tar", f"oci:{work}/stamped:x")
        sh("umoci", "unpack", "--rootless", "--image", f"{work}/stamped:x", f"{work}/bundle")
        public = f"{work}/bundle/rootfs/app/server/public"
        manifest = json.load(open(os.path.join(public, "stamp-assets.json")))
        renamed = {e["path"] for e in manifest["files"].values() if e.get("hash") == "stamp"}
        res["renamed"] = len(renamed)
        with gradio_server(cache, vite) as base:
            before = load_pages(browser, base, ["/"])[0]
        with gradio_server(cache, public) as base:
            after = load_pages(browser, base, ["/"])[0]
        res["pages"] = [{"page": "/", "input_failed": before["failed"], "failed": after["failed"],
                         "new_failures": sorted(set(after["failed"]) - set(before["failed"])), "same_text": after["text"] == before["text"],
                         "text_chars": len(after["text"]), "requests": after["requests"], "new_errors": after["errors"],
                         "renamed_requests": len([q for q in after["paths"] if q.lstrip("/") in renamed])}]
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stamp", required=True)
    ap.add_argument("--cache", default=os.environ.get("STAMP_TEST_CACHE") or os.path.expanduser("~/.cache/stamp-test"))
    ap.add_argument("--only", action="append", choices=NAMES + [IMAGE])
    ap.add_argument("--prepare", action="store_true", help="set the corpus up and stop")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    ensure_venv(a.cache)
    names = a.only or NAMES + [IMAGE]
    for n in names:
        build_frontend(a.cache, "gradio" if n == IMAGE else n)
    if a.prepare:
        for n in names:
            if n != IMAGE:
                print(os.path.join(a.cache, "frontends", n))
        return
    if os.environ.get("STAMP_CORPUS_CHILD") != "1":
        # Playwright lives in the venv: run again there.
        env = dict(os.environ, STAMP_CORPUS_CHILD="1")
        sys.exit(subprocess.run([venv_python(a.cache), os.path.abspath(__file__)] + sys.argv[1:], env=env).returncode)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for n in names:
            print(json.dumps(check_image(a.cache, a.stamp, browser) if n == IMAGE else check(a.cache, a.stamp, n, browser)), flush=True)
        browser.close()


if __name__ == "__main__":
    main()
