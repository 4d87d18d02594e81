"""`python -m k8saudit_eks_py` runs the command line."""

from k8saudit_eks_py.cli import main

raise SystemExit(main())
