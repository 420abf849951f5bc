"""Head-of-line benchmark: does a large compressed produce stall a small one on the same shard?

For each corelog binary given, in one run, this starts the broker on one shard
(`serve --shards 1`, free local port, fresh data dir under target/), creates two
one-partition topics, `big` (compression.type=gzip or --big-codec, so the broker must decompress
the producer's lz4 batches and recompress them) and `small` (defaults), and
measures the latency of a small producer (kafka-python defaults but linger_ms=0, one
100-byte record per `send(...).get()`) to `small` for --duration seconds:

  alone  - nothing else runs;
  big    - meanwhile another process sends ~0.9 MiB lz4 batches of random words to `big`
           as fast as the broker takes them (linger 1 s, so only full batches go out);
  raw (with --control) - the same big producer, to a topic `raw` with
           compression.type=producer, so the broker keeps the producer's lz4 batches
           (no recompression): the client-side and disk share of the interference.

It prints p50/p99/p99.9/max of the small produce per phase and the ratios to `alone`
within the same run (and, with several brokers, each one's `big` phase to the first's),
the number of small sends (closed loop: a stalled producer sends less, so the count is
part of the result), the broker's CPU use, the big producer's acked MB/s (uncompressed
payload) and mean batch size (compressed, from its metrics), and writes
results/head-of-line/summary.json and summary.md. It reads the topics' segments back to
count the codecs the broker stored (gzip in `big` means it recompressed).

Both producers use acks=1 unless --acks all, with idempotence off (so the same run can
measure binaries older than InitProducerId); acks=all adds an fdatasync to every small
produce, which measures the disk as much as the shard's loop.

    scripts/bench-head-of-line --broker baseline=/work/baseline/corelog \
        [--broker new=target/release/corelog] [--duration 20] [--control] \
        [--acks 1|all] [--big-codec gzip|zstd|...] [--value-size 4096]

Needs .venv/bin/python with kafka-python, lz4 and crc32c (scripts/requirements-test.txt;
without crc32c kafka-python checksums each 0.9 MiB batch in pure Python, ~0.1 s, and the
big producer cannot keep the broker busy).
"""

import argparse
import glob
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lz4.frame
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "head-of-line"
BIG_BATCH_COMPRESSED = 900 * 1024  # below the broker's message.max.bytes (1048588)
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def word_text(size, seed=1):
    """`size` bytes of random words from a 1024-word made-up vocabulary (lz4 ~2x, gzip ~3x, like text)."""
    rng = random.Random(seed)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(1024)]
    out, n = [], 0
    while n < size:
        words = " ".join(rng.choices(vocab, k=10000)) + " "
        out.append(words)
        n += len(words)
    return "".join(out).encode()[:size]


# --- the big producer, in a process of its own (no GIL shared with the measurement) ---

def big_producer(port, topic, acks, value_size, batch_size, stop, acked, stats):
    pool = word_text(16 << 20)
    counts = {"ok": 0, "errors": 0, "first_error": None}  # records

    def ok(_meta):
        counts["ok"] += 1

    def err(e):
        counts["errors"] += 1
        counts["first_error"] = counts["first_error"] or repr(e)

    producer = KafkaProducer(
        bootstrap_servers=f"127.0.0.1:{port}",
        compression_type="lz4",
        batch_size=batch_size,
        linger_ms=1000,  # only full batches go out
        acks=acks,
        enable_idempotence=False,
    )
    rng = random.Random(2)
    sent, in_flight_cap = 0, 8 * batch_size // value_size
    while not stop.is_set():
        acked.value = counts["ok"] * value_size
        # kafka-python 3 has no buffer_memory bound: keep at most 8 batches unsettled.
        if sent - counts["ok"] - counts["errors"] > in_flight_cap:
            time.sleep(0.001)
            continue
        start = rng.randrange(len(pool) - value_size)
        producer.send(topic, value=pool[start:start + value_size]).add_callback(ok).add_errback(err)
        sent += 1
    producer.flush(timeout=30)
    metrics = producer.metrics().get("producer-metrics", {})
    producer.close(timeout=10)
    stats.put({
        "errors": counts["errors"],
        "first_error": counts["first_error"],
        "batch_size_config": batch_size,
        "batch_bytes_avg": metrics.get("batch-size-avg"),
        "batch_bytes_max": metrics.get("batch-size-max"),
        "compression_rate_avg": metrics.get("compression-rate-avg"),
        "request_latency_avg_ms": metrics.get("request-latency-avg"),
        "request_latency_max_ms": metrics.get("request-latency-max"),
    })


# --- the broker ---

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(path, data_dir, port, log):
    proc = subprocess.Popen(
        [path, "serve", "--shards", "1",
         "--set", f"listeners=PLAINTEXT://127.0.0.1:{port}",
         "--set", f"log.dirs={data_dir}",
         "--set", "metrics.listener="],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{path} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{path} did not listen on {port} within 60 s")


def stop_broker(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed after 60 s"


def stored_codecs(data_dir, topic):
    """Counts the codecs of the batches in the topic's partition-0 segments."""
    counts, stored = {}, 0
    for seg in sorted(glob.glob(os.path.join(data_dir, f"{topic}-0", "*.log"))):
        with open(seg, "rb") as f:
            while True:
                head = f.read(23)
                if len(head) < 23:
                    break
                length = struct.unpack(">i", head[8:12])[0]
                if length <= 0:
                    break
                codec = CODECS.get(struct.unpack(">h", head[21:23])[0] & 7, "?")
                counts[codec] = counts.get(codec, 0) + 1
                stored += 12 + length
                f.seek(12 + length - 23, os.SEEK_CUR)
    return {"batches": counts, "bytes": stored}


# --- the measurement ---

def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def small_latencies(port, seconds, acks, broker_pid):
    # Idempotence off, so one run can also measure broker binaries older than InitProducerId.
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", linger_ms=0,
                             acks=acks, enable_idempotence=False)
    value = b"x" * 100
    for _ in range(50):  # metadata and connection warm-up, not measured
        producer.send("small", value=value).get(timeout=30)
    out = []
    cpu0, t0 = cpu_seconds(broker_pid), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        producer.send("small", value=value).get(timeout=60)
        out.append((time.perf_counter() - t) * 1000)
    broker_cpu = (cpu_seconds(broker_pid) - cpu0) / (time.monotonic() - t0)
    producer.close()
    out.sort()
    return {
        "sends": len(out),
        "broker_cpu_pct": 100 * broker_cpu,
        "mean_ms": sum(out) / len(out),
        "p50_ms": percentile(out, 0.50),
        "p90_ms": percentile(out, 0.90),
        "p99_ms": percentile(out, 0.99),
        "p999_ms": percentile(out, 0.999),
        "max_ms": out[-1],
    }


def phase_with_big(port, pid, topic, args, batch_size):
    ctx = mp.get_context("spawn")
    stop, acked, stats = ctx.Event(), ctx.Value("q", 0, lock=False), ctx.Queue()
    child = ctx.Process(target=big_producer,
                        args=(port, topic, args.acks, args.value_size, batch_size, stop, acked, stats))
    child.start()
    try:
        deadline = time.monotonic() + 60
        while acked.value == 0:
            if time.monotonic() > deadline or not child.is_alive():
                raise RuntimeError("the big producer got no ack within 60 s")
            time.sleep(0.1)
        time.sleep(args.warmup)
        before, t0 = acked.value, time.monotonic()
        result = small_latencies(port, args.duration, args.acks, pid)
        after, t1 = acked.value, time.monotonic()
        stop.set()
        result["big"] = stats.get(timeout=120)
        result["big"]["mb_per_s"] = (after - before) / (t1 - t0) / 1e6
        return result
    finally:
        stop.set()
        child.join(timeout=60)
        if child.is_alive():
            child.terminate()


def run_broker(name, path, args, batch_size):
    (ROOT / "target").mkdir(exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="head-of-line.", dir=ROOT / "target")
    data_dir, log_path, port = os.path.join(tmp, "data"), os.path.join(tmp, "broker.log"), free_port()
    print(f"[{name}] starting {path} on 127.0.0.1:{port}, data in {data_dir}", flush=True)
    try:
        with open(log_path, "wb") as log:
            proc = start_broker(path, data_dir, port, log)
            try:
                result = {"binary": path, "phases": measure(name, port, proc.pid, args, batch_size)}
                result["stored"] = {t: stored_codecs(data_dir, t) for t in result["phases"]
                                    if t != "alone"}
            finally:
                exit_code = stop_broker(proc)
        result["broker_exit"] = exit_code
        result["broker_log_tail"] = Path(log_path).read_text(errors="replace")[-2000:]
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(name, port, pid, args, batch_size):
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    topics = [NewTopic("big", 1, 1, topic_configs={"compression.type": args.big_codec}),
              NewTopic("small", 1, 1)]
    if args.control:
        topics.append(NewTopic("raw", 1, 1, topic_configs={"compression.type": "producer"}))
    admin.create_topics(topics)
    admin.close()
    print(f"[{name}] alone: {args.duration} s", flush=True)
    phases = {"alone": small_latencies(port, args.duration, args.acks, pid)}
    print(f"[{name}] with the big producer to `big`: {args.duration} s", flush=True)
    phases["big"] = phase_with_big(port, pid, "big", args, batch_size)
    if args.control:
        print(f"[{name}] control, the big producer to `raw`: {args.duration} s", flush=True)
        phases["raw"] = phase_with_big(port, pid, "raw", args, batch_size)
    return phases


# --- the report ---

def markdown(results, args, batch_size, ratio):
    lines = [
        "# Head-of-line: small produce latency while a big compressed producer runs",
        "",
        f"{args.duration} s per phase; small: 100-byte records, linger_ms=0, one send().get() "
        f"at a time; big: {args.value_size}-byte records of random words, lz4, batch_size "
        f"{batch_size} (lz4 ratio {ratio:.2f}, ~{BIG_BATCH_COMPRESSED // 1024} KiB per batch), "
        f"topic `big` compression.type={args.big_codec}. Ratios are to `alone` in the same run.",
        "",
        "| broker | phase | sends | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU | big MB/s | big batch KiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for name, r in results.items():
        alone = r["phases"]["alone"]
        for phase, p in r["phases"].items():
            big = p.get("big", {})
            lines.append(
                f"| {name} | {phase} | {p['sends']} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | "
                f"{p['p999_ms']:.2f} | {p['max_ms']:.1f} | {p['broker_cpu_pct']:.0f}% | "
                + (f"{big['mb_per_s']:.1f} | {(big['batch_bytes_avg'] or 0) / 1024:.0f} |"
                   if big else " | |"))
            if phase != "alone":
                lines.append(
                    f"| {name} | {phase} / alone | {p['sends'] / alone['sends']:.2f}x | "
                    + " | ".join(f"{p[k] / alone[k]:.2f}x"
                                 for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms"))
                    + " | | | |")
        for topic, s in r["stored"].items():
            notes.append(f"- {name}: `{topic}` on disk: {s['bytes'] / 1e6:.0f} MB "
                         f"in batches {s['batches']}")
        errors = {ph: p["big"]["errors"] for ph, p in r["phases"].items() if "big" in p}
        notes.append(f"- {name}: big producer errors {errors}; broker exit {r['broker_exit']}")
    lines += [""] + notes
    first, *others = results
    for name in others:  # before/after in the same run: each broker's `big` phase to the first's
        a, b = results[first]["phases"]["big"], results[name]["phases"]["big"]
        lines.append(f"- {name} / {first}, `big` phase: " + ", ".join(
            f"{k[:-3]} {b[k] / a[k]:.2f}x" for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms"))
            + f", big MB/s {b['big']['mb_per_s'] / a['big']['mb_per_s']:.2f}x")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--duration", type=float, default=20, help="seconds per phase")
    ap.add_argument("--warmup", type=float, default=3, help="seconds of big load before measuring")
    ap.add_argument("--value-size", type=int, default=4096, help="big record size in bytes")
    ap.add_argument("--acks", type=lambda a: a if a == "all" else int(a), default=1,
                    help="acks of both producers: 1 (page cache) or all (fdatasync)")
    ap.add_argument("--big-codec", default="gzip", help="compression.type of topic `big`")
    ap.add_argument("--control", action="store_true",
                    help="add a phase with the big producer to a compression.type=producer topic")
    args = ap.parse_args()
    brokers = dict(b.split("=", 1) for b in args.broker)

    sample = word_text(4 << 20, seed=3)
    ratio = len(sample) / len(lz4.frame.compress(sample, block_linked=False))
    batch_size = int(BIG_BATCH_COMPRESSED * ratio * 0.97)  # uncompressed bytes per batch

    results = {name: run_broker(name, os.path.abspath(path), args, batch_size)
               for name, path in brokers.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = markdown(results, args, batch_size, ratio)
    summary = {"command": sys.argv, "args": vars(args), "batch_size": batch_size,
               "lz4_ratio": ratio, "results": results}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "summary.md").write_text(report)
    print()
    print(report)
    print(f"wrote {RESULTS}/summary.json and summary.md")


if __name__ == "__main__":
    main()
