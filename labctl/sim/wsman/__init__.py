"""WS-Management over HTTP(S): SOAP, authentication, message encryption, PSRP shells."""
