"""Operations over a whole store: backup, restore, stream transfer, the Clojure backup format."""
