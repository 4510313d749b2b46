"""Channel adapters: e-mail, SMS, WeChat, WeCom, webhooks and sinks behind one protocol."""
