#!/usr/bin/env python3
"""Writes a tiny ESRGAN (RRDBNet, 4x, one block, random weights) as safetensors, so the
conformance table's upscale case can run against a real sd-cli without downloading weights:

    python3 reference-engine/test/tiny_esrgan.py /tmp/tiny-esrgan.safetensors
    SD_CLI_BIN=... SD_CLI_UPSCALE_MODEL=/tmp/tiny-esrgan.safetensors npx vitest run src/engines/conformance.test.ts

The tensor names and shapes are those of the usual RealESRGAN_x4plus checkpoints (sd.cpp reads
the scale from conv_up2 and the block count from body.N); the picture it makes is noise.
"""
import json
import random
import struct
import sys

FEAT, GROW = 64, 32


def conv(tensors, name, cin, cout):
    tensors[name + ".weight"] = [cout, cin, 3, 3]
    tensors[name + ".bias"] = [cout]


def main(path):
    tensors = {}
    conv(tensors, "conv_first", 3, FEAT)
    for rdb in (1, 2, 3):
        for k in range(1, 6):
            conv(tensors, f"body.0.rdb{rdb}.conv{k}", FEAT + (k - 1) * GROW, GROW if k < 5 else FEAT)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(tensors, name, FEAT, FEAT)
    conv(tensors, "conv_last", FEAT, 3)

    rng = random.Random(3)
    header, blobs, offset = {}, [], 0
    for name, shape in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        data = struct.pack(f"<{count}f", *(rng.uniform(-0.02, 0.02) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_esrgan.py <out.safetensors>")
    main(sys.argv[1])
