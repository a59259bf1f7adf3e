import sys

from recall2reason.vote.stage import main

if __name__ == "__main__":
    sys.exit(main())
