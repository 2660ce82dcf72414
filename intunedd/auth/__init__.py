"""AuthSessions: stored browser logins that runs reuse, checked and recreated before attempts."""
