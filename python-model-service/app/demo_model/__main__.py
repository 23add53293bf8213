from app.demo_model.build import main

raise SystemExit(main())
