"""What every pricestream service shares."""

from servicekit.service import Service
from servicekit.settings import ServiceSettings

__all__ = ["Service", "ServiceSettings"]
