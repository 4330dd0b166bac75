#!/usr/bin/env python3
"""Times xpra's own packet decoders on the captured hellos in shared/vectors, for comparison with
xgate-protocol's criterion benchmarks (protocol/benches/protocol.rs).

Run it once per decoder, with the interpreter that has that decoder:

  /var/cache/xgate/xpra-6.5.5/bin/python scripts/bench-python-decode.py rencodeplus
  /usr/bin/python3 scripts/bench-python-decode.py rencode      # Debian's python3-rencode

It decompresses each capture first (zlib from the standard library; lz4 with the small block
decoder below, so no lz4 module is needed), then times loads() (and dumps() of the result) on
the decompressed payload with timeit, and prints nanoseconds per call: the best and the median of
REPEATS repeats of wall time (time.perf_counter), and the median of CPU time
(time.process_time), which a loaded machine distorts less. xgate's side of the CPU-time
comparison is protocol/examples/decode_timing.rs under `perf stat -e task-clock`.
"""

import os
import statistics
import struct
import sys
import time
import timeit
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.environ.get("XGATE_VECTORS", os.path.join(HERE, "..", "..", "shared", "vectors"))

CAPTURES = {
    "rencodeplus": ["hello-attach-6.5.5.bin", "hello-info-6.5.5.bin"],
    "rencode": ["hello-attach-3.1.3.bin", "hello-info-3.1.3.bin"],
}


def lz4_block_decompress(src, size):
    """Decodes one raw LZ4 block (the format python-lz4 and xpra use after the size prefix)."""
    out = bytearray()
    i = 0
    n = len(src)
    while i < n:
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        out += src[i:i + lit]
        i += lit
        if i >= n:
            break
        offset = src[i] | (src[i + 1] << 8)
        i += 2
        mlen = token & 15
        if mlen == 15:
            while True:
                b = src[i]
                i += 1
                mlen += b
                if b != 255:
                    break
        mlen += 4
        start = len(out) - offset
        for k in range(mlen):
            out.append(out[start + k])
    if len(out) != size:
        raise ValueError("lz4 size mismatch: %d != %d" % (len(out), size))
    return bytes(out)


def payload(name):
    with open(os.path.join(VECTORS, name), "rb") as f:
        data = f.read()
    magic, flags, comp, index, length = struct.unpack("!BBBBL", data[:8])
    assert magic == ord("P") and index == 0 and length == len(data) - 8, name
    body = data[8:]
    if comp == 0:
        return body
    if comp & 0xF0 == 0:
        return zlib.decompress(body)
    if comp & 0xF0 == 0x10:
        (size,) = struct.unpack("<I", body[:4])
        return lz4_block_decompress(body[4:], size)
    raise ValueError("unsupported compression byte 0x%02x in %s" % (comp, name))


REPEATS = int(os.environ.get("REPEATS", "11"))


def times_ns(fn, number, timer=time.perf_counter):
    """(best, median) nanoseconds per call over REPEATS repeats of `number` calls."""
    times = [t / number * 1e9 for t in timeit.repeat(fn, number=number, repeat=REPEATS, timer=timer)]
    return min(times), statistics.median(times)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "rencodeplus"
    if which == "rencodeplus":
        from xpra.net.rencodeplus.rencodeplus import dumps, loads
        import xpra
        version = "xpra %s rencodeplus" % xpra.__version__
    elif which == "rencode":
        import rencode
        from rencode import dumps, loads
        version = "python-rencode %s" % (getattr(rencode, "__version__", "?"),)
    else:
        sys.exit("usage: bench-python-decode.py rencodeplus|rencode")
    print("# %s, Python %s" % (version, sys.version.split()[0]))
    for name in CAPTURES[which]:
        data = payload(name)
        value = loads(data)
        number = max(200, 2_000_000 // len(data))
        dec_best, dec_med = times_ns(lambda: loads(data), number)
        _, dec_cpu = times_ns(lambda: loads(data), number, time.process_time)
        enc_best, enc_med = times_ns(lambda: dumps(value), number)
        print("%-24s %6d bytes  loads best %9.0f median %9.0f cpu-median %9.0f ns"
              "  dumps best %9.0f median %9.0f ns"
              % (name, len(data), dec_best, dec_med, dec_cpu, enc_best, enc_med))


if __name__ == "__main__":
    main()
