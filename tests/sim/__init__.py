"""A deterministic simulation of the replica protocol: the production Coordinator, balancer, fenced store and
the sources' lease bookkeeping (CloudWatchSource + UnitLeases, KinesisSource + ShardLeases), run against a
virtual clock and simulated AWS services, under seeded schedules of failures, then checked.

    python -m tests.sim --seed 1234 --mode poll --trace     # one schedule, every step and log line
    python -m tests.sim --seed 0 --count 500 --mode stream  # many; prints the ones with violations

Files, one job each:
- kernel.py      virtual time: callbacks at instants, jobs that block in virtual time (the model)
- expressions.py DynamoDB condition / update expressions, parsed and evaluated
- dynamodb.py    the in-memory table, the network (latency, throttling, 500s, lost answers, cut-off)
                 and the client the real LeaseTable uses unchanged
- logs.py        log groups whose streams receive events; FilterLogEvents / DescribeLogStreams
- kinesis.py     a stream with splits and merges; ListShards / GetShardIterator / GetRecords
- replicas.py    one replica: the real objects, with the plugin's threads played as jobs and callbacks
- schedule.py    seeded schedules (replicas joining, leaving, crashing, pausing, cut off; table faults;
                 clusters added, log streams appearing, shards split and merged; bursts)
- world.py       one run: plays a schedule, produces the events, keeps the ledger of deliveries
- checks.py      the invariants, and the bound on repeats
- converge.py    how fast replicas started together balance their units
- run.py         run + check one seed; the replayable report
"""
