"""Decode an Avro single-object-encoded record with fastavro, a non-Go Avro
implementation, using only the .avsc file: proves Strata's event bytes are
standard Avro. Usage: decode_soe.py SCHEMA.avsc RECORD.bin; prints the record
as JSON, or exits non-zero naming the problem."""
import io
import json
import sys

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

schema_path, record_path = sys.argv[1], sys.argv[2]
with open(schema_path) as f:
    schema = fastavro.parse_schema(json.load(f))
with open(record_path, "rb") as f:
    data = f.read()

if data[:2] != b"\xc3\x01":
    sys.exit("not single-object encoding: magic %r" % data[:2])
# fastavro, like Java's SchemaNormalization, gives the CRC-64-AVRO
# fingerprint's bytes little-endian: the order single-object encoding uses.
want = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
if data[2:10] != want:
    sys.exit("fingerprint %s is not the schema's %s" % (data[2:10].hex(), want.hex()))
record = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema)
print(json.dumps(record, sort_keys=True))
