"""What the product does, over the ports; free of boto3 and the Kubernetes client."""
