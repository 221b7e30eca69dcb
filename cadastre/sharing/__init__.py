"""Sharing with other departments by push: the transactional outbox of register events
(``events``), payloads rendered per subscriber from the privacy policy (``payloads``),
subscriptions (``subscriptions``) and signed, ordered, retried webhook delivery (``delivery``).
"""
