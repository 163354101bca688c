import unittest

from textkit import word_count


class WordCountTest(unittest.TestCase):
    def test_words_are_separated_by_any_whitespace(self):
        self.assertEqual(word_count("one two\tthree\nfour"), 4)

    def test_an_empty_text_has_no_words(self):
        self.assertEqual(word_count(""), 0)


if __name__ == "__main__":
    unittest.main()
