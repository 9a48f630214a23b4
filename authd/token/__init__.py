"""HSM security tokens over PKCS#11: the ``authd.v1.TokenService`` feature."""
