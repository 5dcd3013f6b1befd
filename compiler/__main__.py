import sys

from mcuc.cli import main

sys.exit(main())
