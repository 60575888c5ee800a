from objsync.cli import main

raise SystemExit(main())
