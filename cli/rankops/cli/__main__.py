import sys

from rankops.cli.main import main

sys.exit(main())
