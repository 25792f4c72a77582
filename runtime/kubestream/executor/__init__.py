"""An executor process: runs tasks, keeps blocks, serves them to peers and hosts receivers.

Runs in each executor pod (`kubestream executor`), as local processes under `kubestream run`, or
in-process in tests (in_process.py).
"""
