//! Starting and driving real processes for the tests: xgate, xpra 3.1.3 and 6.5.5, Xvfb.
