"""Creating and checking the AWS side of the plugin: what `check`, `setup-stream`, `setup-archive` and
`setup-coordination` do, and the few pieces a source or the coordination layer uses at open.

- checks (`check`): check_context.py (results, options, the session they share), account_check.py
  (region, credentials, assumed role), logs_check.py (audit logging, log group, Logs IAM, recent events),
  cluster_check.py (poll mode: all of them in order, plus the capacity warning), stream_check.py
  (`check kinesis://`), linked_check.py (linked accounts' log groups, `--cross-account observability`),
  lease_table_check.py (the lease table of `--coordination-table`);
- creation: setup_session.py (the session, Region and clients of the set-up commands), stream_create.py
  (`setup-stream`), destination_create.py (its cross-account destinations), archive_create.py
  (`setup-archive`), lease_table_create.py (`setup-coordination`);
- shared: iam_policies.py (every IAM policy the plugin prints), aws_errors.py (reading AWS error answers),
  lease_table_schema.py (the lease table's key schema);
- used at open too: lease_table_verify.py (coordination's open), poll_capacity.py (the CloudWatch
  source's capacity estimate), iam_policies.py (the stream source's access-denied fix).

Nothing here imports a source, the plugin or the command line; import the modules, not this package.
"""
