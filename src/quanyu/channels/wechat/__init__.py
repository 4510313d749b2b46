"""WeChat channels: official-account template messages and subscription notifications, Mini Program
subscribe messages (`template`), and WeCom guide-confirmed customer messages (`wecom`).

Both platforms authenticate with a short-lived access token; `tokens` keeps one per account for the
whole process and holds the HTTP plumbing (JSON POST, transport failure -> outcome) they share.
"""
