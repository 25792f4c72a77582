from kubestream.cli import main

raise SystemExit(main())
