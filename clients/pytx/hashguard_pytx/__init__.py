"""python-threatexchange extension for hashguard: the `hashguard` exchange type and the
`video_tmk_pdqf` signal type.

pytx CLI:  threatexchange config extensions add hashguard_pytx
HMA:       list HashguardSignalExchangeAPI in `exchange_types` and VideoTmkPdqfSignal in
           `signal_types` of DefaultOMMStore in the OMM_CONFIG (docs/partners.md).
"""
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from hashguard_pytx.exchange import (
    HashguardCheckpoint,
    HashguardCollabConfig,
    HashguardCredentials,
    HashguardSignalExchangeAPI,
    HashguardSignalMetadata,
)
from hashguard_pytx.tmk import VideoTmkPdqfIndex, VideoTmkPdqfSignal

# pytx already ships pdq, video_md5 and video_sha256 under hashguard's names; only TMK is new.
TX_MANIFEST = ThreatExchangeExtensionManifest(
    signal_types=(VideoTmkPdqfSignal,),
    apis=(HashguardSignalExchangeAPI,),
)

__all__ = [
    "TX_MANIFEST", "HashguardCheckpoint", "HashguardCollabConfig", "HashguardCredentials",
    "HashguardSignalExchangeAPI", "HashguardSignalMetadata", "VideoTmkPdqfIndex",
    "VideoTmkPdqfSignal",
]
