"""Neural-network ops: softmax family, cross-entropies, conv2d, pooling, dropout."""
