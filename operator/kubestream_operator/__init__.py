"""The kubestream operator: reconciles StreamingJob objects into driver and executor pods.

Layers, from the bottom: pure modules (``spec``, ``keys``, ``manifests``,
``phases``, ``backoff``, ``plan``) decide everything without a cluster; ``kube``
is the one module that talks to the Kubernetes API; ``reconcile`` wires
observe -> decide -> apply -> record status; ``handlers`` registers it with kopf;
``cli`` runs it as ``kubestream operator``.
"""
