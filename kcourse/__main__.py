import sys

from kcourse.cli import main

sys.exit(main())
