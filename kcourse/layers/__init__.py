"""Hand-written Keras layers of the course."""

from kcourse.layers.batch_norm import BatchNormalization, batch_norm_train
from kcourse.layers.conv_as_matrix import MatrixConv1D
from kcourse.layers.dropout import Dropout
from kcourse.layers.gradient_scale import GradientScale
from kcourse.layers.linear import Linear, course_initializer
from kcourse.layers.multi_head_attention import MultiHeadSelfAttention
from kcourse.layers.positional_encoding import PositionalEncoding, sinusoidal_table
from kcourse.layers.vanilla_rnn import VanillaRNN

__all__ = ["BatchNormalization", "Dropout", "GradientScale", "Linear", "MatrixConv1D", "MultiHeadSelfAttention",
           "PositionalEncoding", "VanillaRNN", "batch_norm_train", "course_initializer",
           "sinusoidal_table"]
