"""The compiled answer store: every served name's finished records in wire form.

Built from the index and the verified zone files (`compile.py`), kept in a
memory-mapped LMDB environment (`store.py`), and read by the DNS gateway on a
cache miss (`respond.py`) with one key lookup: no SQL, no zone-file parsing and
no DNS library per query. The SQL index stays the system of record.
"""
