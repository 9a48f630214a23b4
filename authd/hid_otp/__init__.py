"""USB HID OTP generators at a branch: listing, provisioning, identification."""
