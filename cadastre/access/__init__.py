"""Who may see what: accounts, API keys, lockouts, owner verification, personal data
(encryption, ID numbers, log masking), the field privacy policy and stated purposes.
"""
