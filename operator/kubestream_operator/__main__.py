"""``python -m kubestream_operator``: the operator without the runtime's CLI."""

import sys

from kubestream_operator.cli import main

sys.exit(main())
