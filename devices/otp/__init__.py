"""OTP generators: code maths (RFC 4226/6238) and the verification rules of the OTP center."""
