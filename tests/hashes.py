"""Real PDQ values for API tests: hashes of the PDQ authors' sample images (quality 100)."""
BRIDGE = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
BRIDGE_CPP = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"  # the C++ reference output for the same photo
C_PNG = "e64cc9d91e623842f8d1f1d9a398e78c9f199a3bd87924f2b7e11e0bf061b064"
Q0122 = "cfb2009ddd21c6dab0046a7745b5984757a8a4535b3377aea2591d32b33ff940"
Q0291 = "a0fe94f1e5cc1cc8dd855948498dc9243f7ca27336f036d7f212b74bc103c9a7"
Q1050 = "489db672e9190276d452aeab41eba20f02375fe4092d88defdf491a5c55c5f70"
MD5 = "9108849f0d0bb6d3c40844f4eb72767b"


def pdq(value: str, quality: int = 100) -> dict:
    return {"signal_type": "pdq", "value": value, "quality": quality}
