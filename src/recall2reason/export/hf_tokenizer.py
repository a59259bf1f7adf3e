"""The study's SentencePiece tokenizer as a Hugging Face ``transformers`` tokenizer (remote code).

    AutoTokenizer.from_pretrained(dir, trust_remote_code=True)

Encodes with SentencePiece itself, so ids equal the pipeline's (``sp.encode(text)``).
transformers' own LlamaTokenizer is a converted BPE that splits runs of spaces differently
(one GSM8K or MATH500 text in eight got other ids with Llama-2's tokenizer). With special tokens
(the default of ``tokenizer(text)``), the token the study's prompts follow (``prefix_piece``:
EOS, as training packs ``doc EOS doc ...``) is put first. Exported verbatim as
``tokenization_recall2reason.py``: it imports only sentencepiece and transformers.
"""

from __future__ import annotations

import os
import shutil

import sentencepiece as spm
from transformers import PreTrainedTokenizer


class Recall2ReasonTokenizer(PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, prefix_piece=None, **kwargs):
        self.vocab_file, self.prefix_piece = vocab_file, prefix_piece
        self.sp = spm.SentencePieceProcessor(model_file=vocab_file)  # before super(): it looks up the special tokens
        kwargs.setdefault("split_special_tokens", True)  # text is text: "</s>" in it is not EOS, as for sp.encode
        kwargs.setdefault("spaces_between_special_tokens", False)
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(**kwargs)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def get_vocab(self) -> dict[str, int]:
        return {self.sp.id_to_piece(i): i for i in range(self.vocab_size)} | self.added_tokens_encoder

    def _tokenize(self, text, **kwargs):
        return self.sp.encode(text, out_type=str)

    def _convert_token_to_id(self, token):
        return self.sp.piece_to_id(token)

    def _convert_id_to_token(self, index):
        return self.sp.id_to_piece(index)

    def convert_tokens_to_string(self, tokens):
        # special tokens as their text ("</s>"), as transformers' tokenizers decode them (SentencePiece
        # drops them): lm-evaluation-harness stops generating at the decoded EOS
        text, run = "", []
        for token in tokens:
            if token in self.all_special_tokens:
                text, run = text + self.sp.decode_pieces(run) + token, []
            else:
                run.append(token)
        return text + self.sp.decode_pieces(run)

    def _prefix(self) -> list[int]:
        return [] if self.prefix_piece is None else [self.convert_tokens_to_ids(self.prefix_piece)]

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        return self._prefix() + token_ids_0 + (token_ids_1 or [])

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        return [1] * len(self._prefix()) + [0] * (len(token_ids_0) + len(token_ids_1 or []))

    def save_vocabulary(self, save_directory, filename_prefix=None):
        out = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        if os.path.abspath(out) != os.path.abspath(self.vocab_file):
            shutil.copyfile(self.vocab_file, out)
        return (out,)
