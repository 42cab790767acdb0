"""Korean FAQ chatbot: kiwi + multilingual-e5 + ChromaDB + kiwi-BM25 behind one Retriever/Answerer API."""
