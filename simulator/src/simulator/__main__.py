"""Run the simulated storefront: `python -m simulator --port 8090 --seed 7 --dialect freshmart=coles`."""

import argparse
from pathlib import Path

import uvicorn

from simulator.app import create_app
from simulator.dialects import chain_dialects, parse_choice
from simulator.world import World, WorldConfig


def dialect_choice(text: str) -> str:
    """Check a --dialect value: auto, or CHAIN=DIALECT."""
    try:
        parse_choice(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def main(argv: list[str] | None = None) -> None:
    """Build the world the command line describes and serve its shops on --host (127.0.0.1)."""
    defaults = WorldConfig()
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Serve simulated supermarket shops to scrape."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on: 0.0.0.0 in a container")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--catalog", type=Path, help="au-grocery-2023 folder: real chains and product names")
    parser.add_argument("--stores-per-chain", type=int, default=defaults.stores_per_chain)
    parser.add_argument("--zones-per-chain", type=int, default=defaults.zones_per_chain)
    parser.add_argument("--products-per-chain", type=int, default=defaults.products_per_chain)
    parser.add_argument("--exception-share", type=float, default=defaults.exception_share)
    parser.add_argument(
        "--zone-moves-per-chain",
        type=int,
        default=defaults.zone_moves_per_chain,
        help="stores each chain re-zones (also POST /_control/zone-moves)",
    )
    parser.add_argument("--zone-move-day", type=int, default=defaults.zone_move_day)
    parser.add_argument(
        "--rate-limit-rps", type=float, default=0.0, help="per client; 0 turns throttling off"
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of shop requests answered 503")
    parser.add_argument(
        "--dialect",
        type=dialect_choice,
        action="append",
        default=[],
        metavar="CHAIN=DIALECT",
        help="serve a chain as a coles or woolworths site under /shop/CHAIN (default: storefront, /v1);"
        " auto: the first chain as coles, the second as woolworths",
    )
    args = parser.parse_args(argv)
    try:
        world = World.build(
            WorldConfig(
                seed=args.seed,
                stores_per_chain=args.stores_per_chain,
                zones_per_chain=args.zones_per_chain,
                products_per_chain=args.products_per_chain,
                exception_share=args.exception_share,
                zone_moves_per_chain=args.zone_moves_per_chain,
                zone_move_day=args.zone_move_day,
                catalog_path=args.catalog,
            )
        )
        dialects = chain_dialects([chain.slug for chain in world.chains], args.dialect)
        app = create_app(
            world, rate_limit_rps=args.rate_limit_rps, error_rate=args.error_rate, dialects=dialects
        )
    except ValueError as error:
        parser.error(str(error))
    chains = ", ".join(f"{chain.slug} ({dialects.get(chain.slug, 'storefront')})" for chain in world.chains)
    print(f"storefront on http://{args.host}:{args.port} (seed {args.seed}; chains {chains})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
