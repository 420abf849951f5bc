"""Writes golden vectors: request and response frames encoded by kafka-python's own
protocol classes (an implementation independent of ours and of the kafka-protocol crate).

For every message kafka-python and our specs both define, at every version both know,
it fills each field present in that version with deterministic pseudo-random values
(nulls where the version allows them, tagged fields sometimes set), encodes the whole
frame (size prefix, header, body) and writes one line per vector:

    tests/golden/kafka-python/<MessageName>.hex:  v<version> <hex of the frame>

Run through scripts/golden-vectors; the output is checked in and read by
tests/golden.rs, which requires our decode + re-encode to reproduce each frame exactly.
"""

import json
import os
import random
import re
import sys
import uuid

from kafka.protocol.api_message import ApiMessage
from kafka.protocol.schemas.fields.array import ArrayField
from kafka.protocol.schemas.fields.simple import SimpleField
from kafka.protocol.schemas.fields.struct import StructField
from kafka.protocol.schemas.fields.struct_array import StructArrayField

SEED = 20240611
VECTORS_PER_VERSION = 2


def our_versions(specs_dir, name):
    path = os.path.join(specs_dir, name + '.json')
    if not os.path.exists(path):
        return None
    text = re.sub(r'^\s*//.*$', '', open(path).read(), flags=re.M)
    lo, _, hi = json.loads(text)['validVersions'].partition('-')
    return int(lo), int(hi or lo)


def value_for(field, version, rng):
    type_str = field.type_str
    nullable = field.nullable_for_version_q(version)
    if nullable and rng.random() < 0.2:
        return None
    if isinstance(field, StructArrayField):
        return [fill(field.data_class, field.fields, version, rng) for _ in range(rng.randint(0, 3))]
    if isinstance(field, StructField):
        return fill(field.data_class, field.fields, version, rng)
    if isinstance(field, ArrayField):
        inner = type_str[2:]
        return [scalar(inner, rng) for _ in range(rng.randint(0, 3))]
    return scalar(type_str, rng)


def scalar(type_str, rng):
    if type_str == 'bool':
        return rng.random() < 0.5
    if type_str == 'int8':
        return rng.randint(-128, 127)
    if type_str == 'int16':
        return rng.choice([0, -1, rng.randint(-32768, 32767)])
    if type_str == 'uint16':
        return rng.randint(0, 65535)
    if type_str == 'int32':
        return rng.choice([0, -1, rng.randint(-2**31, 2**31 - 1)])
    if type_str == 'int64':
        return rng.choice([0, -1, rng.randint(-2**63, 2**63 - 1)])
    if type_str == 'float64':
        return rng.choice([0.0, 1.5, rng.randint(0, 10**9) / 1024])
    if type_str == 'string':
        return ''.join(rng.choice('abcdefghijklmnopqrstuvwxyz-._0123456789') for _ in range(rng.randint(0, 12)))
    if type_str in ('bytes', 'records'):
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 40)))
    if type_str == 'bitfield':  # kafka-python's view of authorized-operations int32s
        return None if rng.random() < 0.3 else set(rng.sample(range(3, 15), rng.randint(0, 4)))
    if type_str == 'uuid':
        return uuid.UUID(int=rng.getrandbits(128) | 1)
    raise ValueError('unsupported type %s' % type_str)


def fill(data_class, fields, version, rng):
    kwargs = {}
    for field in fields.values():
        if not field.for_version_q(version):
            continue
        tagged = field.tagged_field_q(version)
        if tagged and rng.random() < 0.5:
            continue  # leave the default: not written
        value = value_for(field, version, rng)
        default = field.default
        if isinstance(field, StructField) and not isinstance(field, StructArrayField):
            default = field.data_class(version=version)
        if tagged and value == default:
            # Kafka writes a tagged field only when it differs from its default;
            # kafka-python writes whatever was set explicitly. Leave it unset.
            continue
        kwargs[field.name] = value
    return data_class(version=version, **kwargs)


def message_classes():
    seen = {}
    stack = list(ApiMessage.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if getattr(cls, '_class_version', None) is None and getattr(cls, '_json', None):
            seen[cls.name] = cls
    return seen


def main():
    specs_dir, out_dir = sys.argv[1], sys.argv[2]
    import kafka.protocol.admin, kafka.protocol.consumer, kafka.protocol.metadata  # noqa: F401
    import kafka.protocol.producer  # noqa: F401
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(SEED)
    written = 0
    for name, cls in sorted(message_classes().items()):
        ours = our_versions(specs_dir, name)
        if ours is None:
            continue
        lo = max(ours[0], cls._valid_versions[0])
        hi = min(ours[1], cls._valid_versions[1])
        lines = []
        for version in range(lo, hi + 1):
            for i in range(VECTORS_PER_VERSION):
                msg = fill(cls[version], cls._struct.fields, version, rng)
                msg.with_header(correlation_id=rng.randint(0, 2**31 - 1), **(
                    {'client_id': rng.choice([None, 'golden', 'kafka-python'])} if cls.is_request() else {}))
                frame = msg.encode(header=True, framed=True)
                lines.append('v%d %s' % (version, bytes(frame).hex()))
        if lines:
            with open(os.path.join(out_dir, name + '.hex'), 'w') as f:
                f.write('\n'.join(lines) + '\n')
            written += len(lines)
    print('kafka-python vectors: %d frames' % written)


if __name__ == '__main__':
    main()
