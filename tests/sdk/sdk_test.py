"""The gateway with the official OpenAI and Anthropic Python SDKs (pinned in scripts/pyref.sh).

Run by scripts/test-sdk.sh, which builds the fixtures (a synthetic trace, a small trained export)
and passes their paths in the environment:
  CONDUCTOR_BIN, CONDUCTOR_EXPORT, CONDUCTOR_TRACES, CONDUCTOR_WORK (a scratch folder).
Starts on loopback: replay providers (one fast, one slow), `conductor serve` with API keys, one
without keys in front of the slow providers, and (when redis-server is installed) a redis-server
with two gateway replicas sharing its counters.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

import anthropic
import h5py
import openai

BIN = os.environ["CONDUCTOR_BIN"]
EXPORT = os.environ["CONDUCTOR_EXPORT"]
TRACES = os.environ["CONDUCTOR_TRACES"]
WORK = os.environ["CONDUCTOR_WORK"]
GOOD_KEY = "sk-conductor-test-good"
SLOW_KEY = "sk-conductor-test-rate"
BROKE_KEY = "sk-conductor-test-broke"
LATE_KEY = "sk-conductor-test-late"
PROCS = []
LOGS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def http_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def start(args, name, health):
    log = open(os.path.join(WORK, name + ".log"), "w")
    LOGS.append(log)
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.returncode}: see {log.name}")
        try:
            health()
            return p
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not come up: see {log.name}")


def replay(port, extra):
    return start([BIN, "replay-server", "--traces", TRACES, "--port", str(port)] + extra, f"replay-{port}",
                 lambda: http_json(f"http://127.0.0.1:{port}/healthz"))


def workers():
    with h5py.File(TRACES, "r") as f:
        return [w.decode() if isinstance(w, bytes) else str(w) for w in f["/models/name"][()]]


def serve(port, replay_port, name, keys=None, extra_yaml="", direct=None):
    cfg = os.path.join(WORK, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("gateway:\n  threads: 2\n  call_timeout_s: 20\n  retries: 1\n  backoff_initial_s: 0.01\n")
        if direct:
            f.write(f"  direct_workers: [{', '.join(direct)}]\n")
        f.write("  providers:\n")
        for w in workers():
            f.write(f"    - {{worker: {w}, base_url: \"http://127.0.0.1:{replay_port}/v1\"}}\n")
        f.write(extra_yaml)
    args = [BIN, "serve", "--export", EXPORT, "--port", str(port), "--config", cfg,
            "--log-dir", os.path.join(WORK, name + "-logs")]
    if keys:
        args += ["--keys", keys]
    return start(args, name, lambda: http_json(f"http://127.0.0.1:{port}/healthz"))


def write_keys(path, entries):
    with open(path, "w") as f:
        f.write("keys:\n")
        for e in entries:
            f.write("  - {" + ", ".join(f"{k}: {v}" for k, v in e.items()) + "}\n")


def queries(n):
    """Test-split queries every worker answered without a logged error (one call is enough)."""
    with h5py.File(TRACES, "r") as f:
        text = [t.decode() if isinstance(t, bytes) else str(t) for t in f["/queries/text"][()]]
        split = f["/queries/split"][()]
        err = f["/outcomes/error"][()]
        quality = f["/outcomes/quality"][()]
    out = []
    for q in range(len(text)):
        if split[q] == 2 and (err[q] == 0).all() and (quality[q] == quality[q]).all():
            out.append(text[q])
            if len(out) == n:
                break
    return out


class Gateway(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fast_port, cls.slow_port = free_port(), free_port()
        replay(cls.fast_port, ["--speedup", "1000"])
        replay(cls.slow_port, ["--delay", "4"])
        cls.keys = os.path.join(WORK, "keys.yaml")
        write_keys(cls.keys, [
            {"id": "good", "sha256": sha(GOOD_KEY)},
            {"id": "rate", "sha256": sha(SLOW_KEY), "requests_per_minute": 2},
            {"id": "broke", "sha256": sha(BROKE_KEY), "budget_usd_per_day": 1e-12},
        ])
        cls.port = free_port()
        cls.w = workers()
        cls.gateway = serve(cls.port, cls.fast_port, "gw", keys=cls.keys, direct=[cls.w[0]])
        cls.slow = free_port()
        serve(cls.slow, cls.slow_port, "gw-slow", direct=[cls.w[0]])
        cls.q = queries(6)
        cls.client = openai.OpenAI(base_url=f"http://127.0.0.1:{cls.port}/v1", api_key=GOOD_KEY, max_retries=0)

    def test_create_and_stream_give_the_same_answer(self):
        for text in self.q[:4]:
            msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
            full = self.client.chat.completions.create(model="conductor", messages=msgs)
            self.assertEqual(full.object, "chat.completion")
            self.assertTrue(full.choices[0].message.content)
            self.assertGreater(full.usage.total_tokens, 0)
            stream = self.client.chat.completions.create(model="conductor", messages=msgs, stream=True,
                                                         stream_options={"include_usage": True})
            pieces, usage = [], None
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    usage = chunk.usage
            self.assertEqual("".join(pieces), full.choices[0].message.content)
            self.assertIsNotNone(usage)
            self.assertEqual(usage.total_tokens, full.usage.total_tokens)

    def test_raw_response_headers(self):
        raw = self.client.chat.completions.with_raw_response.create(
            model="conductor", messages=[{"role": "user", "content": self.q[0]}])
        self.assertTrue(raw.headers["x-conductor-route"])
        self.assertTrue(raw.headers["x-conductor-request-id"].startswith("req_"))
        self.assertGreaterEqual(float(raw.headers["x-conductor-cost-usd"]), 0.0)

    def test_models_list_and_retrieve(self):
        ids = [m.id for m in self.client.models.list()]
        self.assertEqual(ids, ["conductor", self.w[0]])
        self.assertEqual(self.client.models.retrieve("conductor").id, "conductor")
        with self.assertRaises(openai.NotFoundError):
            self.client.models.retrieve("gpt-0")

    def test_multi_turn(self):
        first = self.client.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[1]}])
        second = self.client.chat.completions.create(model="conductor", messages=[
            {"role": "user", "content": self.q[1]},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": self.q[2]}])
        alone = self.client.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[2]}])
        # The conductor routes on the last user message; the replay answers it.
        self.assertEqual(second.choices[0].message.content, alone.choices[0].message.content)

    def test_a_direct_worker(self):
        r = self.client.chat.completions.create(model=self.w[0], messages=[{"role": "user", "content": self.q[0]}])
        self.assertEqual(r.model, self.w[0])

    def test_bad_key_is_401(self):
        bad = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="sk-wrong", max_retries=0)
        with self.assertRaises(openai.AuthenticationError) as e:
            bad.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[0]}])
        self.assertEqual(e.exception.status_code, 401)
        with self.assertRaises(openai.AuthenticationError):
            bad.models.list()

    def test_rate_limit_is_429_with_retry_after(self):
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=SLOW_KEY, max_retries=0)
        if 60 - time.gmtime().tm_sec < 10:  # keep the three calls in one minute window
            time.sleep(61 - time.gmtime().tm_sec)
        for _ in range(2):
            c.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[0]}])
        with self.assertRaises(openai.RateLimitError) as e:
            c.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[0]}])
        self.assertTrue(1 <= int(e.exception.response.headers["retry-after"]) <= 60)

    def test_budget_is_429_with_retry_after(self):
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=BROKE_KEY, max_retries=0)
        c.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[3]}])
        with self.assertRaises(openai.RateLimitError) as e:
            c.chat.completions.create(model="conductor", messages=[{"role": "user", "content": self.q[3]}])
        self.assertEqual(e.exception.type, "insufficient_quota")
        self.assertIn("daily budget", str(e.exception))
        self.assertTrue(1 <= int(e.exception.response.headers["retry-after"]) <= 86400)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics").read().decode()
        self.assertIn('conductor_key_spend_usd{key="broke",period="day"}', metrics)

    def test_disconnect_mid_stream_cancels_the_upstream_call(self):
        slow = openai.OpenAI(base_url=f"http://127.0.0.1:{self.slow}/v1", api_key="unused", max_retries=0)
        before = http_json(f"http://127.0.0.1:{self.slow_port}/healthz")["cancelled"]
        t0 = time.time()
        stream = slow.chat.completions.create(model=self.w[0], messages=[{"role": "user", "content": self.q[0]}],
                                              stream=True)
        got = ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got += chunk.choices[0].delta.content
                break
        stream.close()  # hang up mid-stream
        self.assertTrue(got)
        deadline = time.time() + 3
        while time.time() < deadline and http_json(f"http://127.0.0.1:{self.slow_port}/healthz")["cancelled"] == before:
            time.sleep(0.05)
        self.assertEqual(http_json(f"http://127.0.0.1:{self.slow_port}/healthz")["cancelled"], before + 1)
        self.assertLess(time.time() - t0, 3.9, "the upstream answer ran to its end")

    def test_anthropic_sdk(self):
        c = anthropic.Anthropic(base_url=f"http://127.0.0.1:{self.port}", api_key=GOOD_KEY, max_retries=0)
        text = self.q[4]
        m = c.messages.create(model="conductor", max_tokens=64, system="be brief",
                              messages=[{"role": "user", "content": text}])
        self.assertEqual(m.type, "message")
        full = self.client.chat.completions.create(model="conductor", messages=[
            {"role": "system", "content": "be brief"}, {"role": "user", "content": text}])
        self.assertEqual(m.content[0].text, full.choices[0].message.content)
        with c.messages.stream(model="conductor", max_tokens=64, system="be brief",
                               messages=[{"role": "user", "content": text}]) as s:
            streamed = "".join(s.text_stream)
            final = s.get_final_message()
        self.assertEqual(streamed, m.content[0].text)
        self.assertEqual(final.usage.output_tokens, m.usage.output_tokens)
        bad = anthropic.Anthropic(base_url=f"http://127.0.0.1:{self.port}", api_key="sk-wrong", max_retries=0)
        with self.assertRaises(anthropic.AuthenticationError):
            bad.messages.create(model="conductor", max_tokens=8, messages=[{"role": "user", "content": text}])

    def test_zz_sighup_reloads_the_keys(self):
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=LATE_KEY, max_retries=0)
        with self.assertRaises(openai.AuthenticationError):
            c.models.list()
        write_keys(self.keys, [{"id": "good", "sha256": sha(GOOD_KEY)}, {"id": "late", "sha256": sha(LATE_KEY)}])
        self.gateway.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while True:
            try:
                c.models.list()
                break
            except openai.AuthenticationError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)


@unittest.skipUnless(shutil.which("redis-server"), "redis-server is not installed (apt-get install redis-server)")
class SharedCounters(unittest.TestCase):
    def test_two_replicas_enforce_one_rate_limit_and_one_budget(self):
        rport = free_port()
        start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
              "redis", lambda: socket.create_connection(("127.0.0.1", rport), timeout=1).close())
        fast = free_port()
        replay(fast, ["--speedup", "1000"])
        keys = os.path.join(WORK, "keys-shared.yaml")
        write_keys(keys, [{"id": "rate", "sha256": sha(SLOW_KEY), "requests_per_minute": 4},
                          {"id": "broke", "sha256": sha(BROKE_KEY), "budget_usd_per_day": 1e-12}])
        auth = f"auth: {{keys_file: {keys}, redis_url: \"redis://127.0.0.1:{rport}/0\"}}\n"
        ports = [free_port(), free_port()]
        for i, p in enumerate(ports):
            serve(p, fast, f"gw-redis-{i}", extra_yaml=auth)
        q = queries(1)[0]
        clients = [openai.OpenAI(base_url=f"http://127.0.0.1:{p}/v1", api_key=SLOW_KEY, max_retries=0) for p in ports]
        if 60 - time.gmtime().tm_sec < 10:
            time.sleep(61 - time.gmtime().tm_sec)
        for i in range(4):  # two on each replica: 4 of the key's 4 per minute
            clients[i % 2].chat.completions.create(model="conductor", messages=[{"role": "user", "content": q}])
        for c in clients:
            with self.assertRaises(openai.RateLimitError):
                c.chat.completions.create(model="conductor", messages=[{"role": "user", "content": q}])
        broke = [openai.OpenAI(base_url=f"http://127.0.0.1:{p}/v1", api_key=BROKE_KEY, max_retries=0) for p in ports]
        broke[0].chat.completions.create(model="conductor", messages=[{"role": "user", "content": q}])
        # The spend recorded by replica 0 stops the key on replica 1.
        with self.assertRaises(openai.RateLimitError) as e:
            broke[1].chat.completions.create(model="conductor", messages=[{"role": "user", "content": q}])
        self.assertIn("daily budget", str(e.exception))


def tearDownModule():
    for p in reversed(PROCS):
        if p.poll() is None:
            p.terminate()
    for p in PROCS:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    for log in LOGS:
        log.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
