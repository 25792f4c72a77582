"""Kubernetes' rules for names and label values, and which StreamingJob names fit them.

The CRD refuses a job name its children could not use (its root
``x-kubernetes-validations`` rule holds the same pattern and limit as this
module, which a test checks); ``job_name_problem`` is the operator's own copy of
that rule, for jobs created before the CRD had it. Children keep readable names
(``NAME-driver``) instead of truncated ones with a hash, as the Flink operator
does, so ``kubectl get svc`` and the driver's DNS name say which job they serve.
Pure functions, used by ``observe`` and the tests.
"""

import re

# Kubernetes' apimachinery validation: RFC 1035 label (Service names), RFC 1123
# subdomain (most object names) and label value.
DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_MAX = 63
DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
LABEL_VALUE_MAX = 63

# The driver Service, NAME-driver, is the longest child name that must be a
# DNS-1035 label; every other child name is a subdomain, far below its limit.
DRIVER_SERVICE_SUFFIX = "-driver"
MAX_JOB_NAME_LENGTH = DNS1035_LABEL_MAX - len(DRIVER_SERVICE_SUFFIX)

JOB_NAME_RULE = (
    f"metadata.name must be at most {MAX_JOB_NAME_LENGTH} characters of lowercase letters, "
    "digits and '-', starting with a letter and ending with a letter or digit "
    "(a DNS-1035 label: the job's driver Service is named NAME-driver)"
)


def is_dns1035_label(value: str) -> bool:
    return len(value) <= DNS1035_LABEL_MAX and re.fullmatch(DNS1035_LABEL, value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return (
        len(value) <= DNS1123_SUBDOMAIN_MAX and re.fullmatch(DNS1123_SUBDOMAIN, value) is not None
    )


def is_label_value(value: str) -> bool:
    return len(value) <= LABEL_VALUE_MAX and re.fullmatch(LABEL_VALUE, value) is not None


def job_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a StreamingJob's children, or None if it can."""
    if len(name) <= MAX_JOB_NAME_LENGTH and re.fullmatch(DNS1035_LABEL, name):
        return None
    return (
        f"{JOB_NAME_RULE}; {name!r} ({len(name)} characters) is not: "
        "recreate the job under such a name"
    )
