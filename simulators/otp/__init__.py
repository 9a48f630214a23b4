"""A display OTP generator."""
