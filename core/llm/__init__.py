"""The model side: providers and their clients (providers, provider_choice), tokens, prices (pricing,
custom_prices), tool definitions (tools), the offline model (local_model, local_server, model_file)."""
