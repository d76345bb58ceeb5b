"""Every asset check, gathered for the definitions; each is written beside its asset."""

from assets.footprint_checks import FOOTPRINT_CHECKS
from assets.maintenance import MAINTENANCE_CHECKS
from assets.market_data import MARKET_DATA_CHECKS
from assets.profile_checks import PROFILE_CHECKS

ASSET_CHECKS = [*MARKET_DATA_CHECKS, *PROFILE_CHECKS, *FOOTPRINT_CHECKS, *MAINTENANCE_CHECKS]
