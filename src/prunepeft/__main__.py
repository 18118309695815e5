import sys

from prunepeft.cli import main

sys.exit(main())
