from objsync.bench.cli import main

raise SystemExit(main())
