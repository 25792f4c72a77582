"""The driver process: loads the application, serves executors, the HTTP API and the UI.

Runs in the driver pod (`kubestream driver`) or `kubestream run`; nothing here runs in an executor.
"""
