"""``python -m functions.billing sync``: create what is missing of the catalog's Billing Meters, products
and prices at Stripe (``STRIPE_API_KEY``; ``STRIPE_API_BASE`` for another address). Idempotent."""

from __future__ import annotations

import json
import sys

from functions.billing.handler import sync_catalog


def main(argv: list[str]) -> int:
    if argv != ["sync"]:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(sync_catalog({}, None), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
